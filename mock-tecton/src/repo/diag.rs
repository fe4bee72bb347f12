//! Mistakes in a repository file: each with its file, line, column and field, all collected
//! before the reader gives up, so one run reports every mistake.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use super::raw::S;
use crate::duration;

/// One mistake in a repository file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoError {
    /// The file (or `<embedded demo>`).
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path, like `feature_views[1].aggregations[0].function`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All mistakes found in a repository file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RepoErrors(pub Vec<RepoError>);

impl RepoErrors {
    pub(super) fn io(origin: &str, e: &std::io::Error) -> Self {
        RepoErrors(vec![RepoError {
            origin: origin.to_owned(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read the repository file: {e}"),
        }])
    }
}

impl fmt::Display for RepoErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "the feature repository has {n} error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Collects errors with positions computed from byte spans.
pub(super) struct Diag<'a> {
    text: &'a str,
    origin: &'a str,
    errors: Vec<RepoError>,
    /// Names of objects (or `source.column`s) left out because of a reported mistake:
    /// references to them are not reported again.
    pub broken: HashSet<String>,
}

impl<'a> Diag<'a> {
    /// Collects the mistakes in `text`, read from `origin`.
    pub(super) fn new(text: &'a str, origin: &'a str) -> Self {
        Diag {
            text,
            origin,
            errors: Vec::new(),
            broken: HashSet::new(),
        }
    }

    /// Every mistake, in file order so a reader can fix them top to bottom; `Ok` when none.
    pub(super) fn finish(mut self) -> Result<(), RepoErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors
            .sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
        Err(RepoErrors(self.errors))
    }

    pub(super) fn at(
        &mut self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.at_opt(Some(span), field, message);
    }

    /// An error at a position when one is known.
    pub(super) fn at_opt(
        &mut self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = span.map_or((None, None), |s| {
            let (l, c) = line_col(self.text, s.start);
            (Some(l), Some(c))
        });
        self.errors.push(RepoError {
            origin: self.origin.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }

    /// The file being read, as errors name it.
    pub(super) fn origin(&self) -> &str {
        self.origin
    }

    /// Whether an error was already reported for this field path.
    pub(super) fn reported(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    /// A positive duration, or an error at its position.
    pub(super) fn duration(&mut self, s: &S<String>, field: &str) -> Option<i64> {
        match duration::parse(s.get_ref()) {
            Ok(d) if d > 0 => Some(d),
            Ok(_) => {
                self.at(s.span(), field, "must be longer than zero");
                None
            }
            Err(e) => {
                self.at(s.span(), field, e.to_string());
                None
            }
        }
    }

    /// Reports empty and repeated names.
    pub(super) fn unique<'n>(
        &mut self,
        names: impl IntoIterator<Item = (&'n S<String>, String)>,
        what: &str,
    ) {
        let mut seen = HashSet::new();
        for (name, field) in names {
            if name.get_ref().is_empty() {
                self.at(name.span(), field, format!("{what} name must not be empty"));
            } else if !seen.insert(name.get_ref().clone()) {
                self.at(
                    name.span(),
                    field,
                    format!("{what} `{}` is defined twice", name.get_ref()),
                );
            }
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}
