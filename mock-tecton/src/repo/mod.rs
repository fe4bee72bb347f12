//! The feature repository: Tecton's objects as the mock knows them.
//!
//! A repository is a TOML file modelled on what `tecton apply` would create: workspaces (live
//! or not), service accounts with API keys and a role per workspace, entities and their join
//! keys, push sources (Stream Ingest API) and stream sources (Kafka pattern), stream feature
//! views and feature services. The same objects are applied to every workspace listed.
//! [`Repository::demo`] is the embedded fraud demo that every command uses without a file.

mod batch;
mod diag;
mod load;
mod model;
mod raw;
mod read;

pub use batch::{BatchFormat, BatchSource};
pub use diag::{RepoError, RepoErrors};
pub use model::*;

/// The embedded demo repository's TOML text.
pub const DEMO_TOML: &str = include_str!("default.toml");

impl Repository {
    /// Parses and validates a repository from TOML text. `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Repository, RepoErrors> {
        load::load(text, origin)
    }

    /// Reads and validates a repository file.
    pub fn from_file(path: &std::path::Path) -> Result<Repository, RepoErrors> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RepoErrors::io(&origin, &e))?;
        load::load(&text, &origin)
    }

    /// The embedded fraud-detection demo described in the README.
    pub fn demo() -> Repository {
        // The demo is checked by a unit test, so failing here is a build defect, not bad input.
        #[allow(clippy::expect_used)]
        load::load(DEMO_TOML, "<embedded demo>").expect("the embedded demo repository is valid")
    }
}

#[cfg(test)]
mod tests;
