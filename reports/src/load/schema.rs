//! The published JSON Schema of `report.json` (`reports/schema/load-report.schema.json`).

/// The JSON Schema (draft 2020-12) that every `report.json` written by [`super::write_all`]
/// conforms to; it documents every field.
pub const LOAD_REPORT_SCHEMA: &str = include_str!("../../schema/load-report.schema.json");
