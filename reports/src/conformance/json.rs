//! JSON: the report's data types serialized as they are, for machines.

use super::SuiteReport;

/// Renders the report as pretty-printed JSON.
pub fn render(report: &SuiteReport) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Parses a report rendered by [`render`].
pub fn parse(text: &str) -> Result<SuiteReport, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let report = super::super::sample::report();
        let back = parse(&render(&report));
        assert_eq!(back.ok(), Some(report));
    }
}
