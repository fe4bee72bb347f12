//! Hand-written SVG line charts.
