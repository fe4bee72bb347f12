//! The defects a mutant sink can have: each is one switch in the reference sink's code. This
//! module sits below both, so the reference reads its switches here and the mutants set them.

use std::fmt;
use std::str::FromStr;

/// One defect of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutant {
    /// Sends one record per request. Trips `batching_efficiency` (a warning: requests carry far
    /// fewer records than the batch size allows).
    NoBatching,
    /// Ignores `SINK_BATCH_SIZE` and Tecton's 10-record limit, sending up to 25 records per
    /// request. Trips `batch_limit` (and `outcome`: the mock answers 400
    /// `RequestValidationError`).
    OversizeBatches,
    /// Gives up on the first retryable failure (429, 5xx, timeout, connection error). Trips
    /// `retry_retryable` (and `outcome`).
    NoRetry,
    /// Retries 400, 401, 403 and 404 as if they were transient. Trips `no_retry_definite`.
    RetriesDefinite4xx,
    /// Ignores `SINK_MAX_RETRIES`: stops only after 50 attempts of one batch. Trips
    /// `retry_bound`.
    UnboundedRetries,
    /// Retries immediately, with no backoff (still honours `Retry-After`). Trips `backoff`
    /// (retry gaps near zero).
    NoBackoff,
    /// Waits exactly `base * 2^attempt` (capped), with no randomness. Trips `jitter` (retry gaps
    /// equal the deterministic schedule).
    NoJitter,
    /// Does not wait for `Retry-After`. Trips `retry_after` (retry sooner than asked).
    IgnoresRetryAfter,
    /// Sets no per-request timeout, so a hung request holds the sink until the server lets go.
    /// Trips `timeout` (no retry about `SINK_TIMEOUT_S` after a hang).
    NoTimeout,
    /// Sends its batches in reverse order. Trips `key_order` (per-key event order).
    Reorders,
    /// Gives up like the reference but exits 0. Trips `completeness` and `outcome` (exit 0
    /// although records are missing from the stores).
    LiesAboutSuccess,
    /// Re-sends every third batch once after its 200. Trips `duplicates` (a duplicate that no
    /// indefinite failure excuses).
    DuplicatesAfterSuccess,
    /// Sends `Authorization: Bearer <key>` instead of `Tecton-key <key>`. Trips `auth_header`
    /// (and `outcome`: every request gets 401).
    WrongAuthScheme,
    /// Sends `workspaceName`/`dryRun` (the `/v2/ingest` spelling) to `/ingest`. Trips
    /// `request_shape` (and `outcome`: every request gets 400).
    CamelCaseBody,
    /// Never flushes the final partial batch, yet exits 0. Trips `completeness` (and
    /// `outcome`).
    DropsLastBatch,
    /// Takes any 200 as an acknowledgement, whatever its body (as most HTTP clients do).
    /// Trips `ack_body` (a warning: the records may never have been written).
    TrustsAny200,
}

impl Mutant {
    /// Every mutant, in declaration order.
    pub const ALL: [Mutant; 16] = [
        Mutant::NoBatching,
        Mutant::OversizeBatches,
        Mutant::NoRetry,
        Mutant::RetriesDefinite4xx,
        Mutant::UnboundedRetries,
        Mutant::NoBackoff,
        Mutant::NoJitter,
        Mutant::IgnoresRetryAfter,
        Mutant::NoTimeout,
        Mutant::Reorders,
        Mutant::LiesAboutSuccess,
        Mutant::DuplicatesAfterSuccess,
        Mutant::WrongAuthScheme,
        Mutant::CamelCaseBody,
        Mutant::DropsLastBatch,
        Mutant::TrustsAny200,
    ];

    /// The kebab-case name used on command lines and in reports (`no-batching`).
    pub fn name(self) -> &'static str {
        match self {
            Mutant::NoBatching => "no-batching",
            Mutant::OversizeBatches => "oversize-batches",
            Mutant::NoRetry => "no-retry",
            Mutant::RetriesDefinite4xx => "retries-definite-4xx",
            Mutant::UnboundedRetries => "unbounded-retries",
            Mutant::NoBackoff => "no-backoff",
            Mutant::NoJitter => "no-jitter",
            Mutant::IgnoresRetryAfter => "ignores-retry-after",
            Mutant::NoTimeout => "no-timeout",
            Mutant::Reorders => "reorders",
            Mutant::LiesAboutSuccess => "lies-about-success",
            Mutant::DuplicatesAfterSuccess => "duplicates-after-success",
            Mutant::WrongAuthScheme => "wrong-auth-scheme",
            Mutant::CamelCaseBody => "camel-case-body",
            Mutant::DropsLastBatch => "drops-last-batch",
            Mutant::TrustsAny200 => "trusts-any-200",
        }
    }

    /// One line saying what is wrong with this mutant.
    pub fn defect(self) -> &'static str {
        match self {
            Mutant::NoBatching => "sends one record per request",
            Mutant::OversizeBatches => "sends up to 25 records per request",
            Mutant::NoRetry => "gives up on the first retryable failure",
            Mutant::RetriesDefinite4xx => "retries 400/401/403/404",
            Mutant::UnboundedRetries => "ignores the retry budget (50 attempts)",
            Mutant::NoBackoff => "retries immediately",
            Mutant::NoJitter => "backs off without jitter",
            Mutant::IgnoresRetryAfter => "ignores Retry-After",
            Mutant::NoTimeout => "has no per-request timeout",
            Mutant::Reorders => "sends batches in reverse order",
            Mutant::LiesAboutSuccess => "exits 0 after giving up",
            Mutant::DuplicatesAfterSuccess => "re-sends every third acknowledged batch",
            Mutant::WrongAuthScheme => "sends Authorization: Bearer",
            Mutant::CamelCaseBody => "sends workspaceName/dryRun to /ingest",
            Mutant::DropsLastBatch => "never flushes the final partial batch",
            Mutant::TrustsAny200 => "takes any 200 as an acknowledgement",
        }
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mutant {
    type Err = UnknownMutant;

    /// Accepts the kebab-case name or the variant name, any case, `-`/`_` ignored
    /// (`no-batching`, `NoBatching`, `no_batching`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let squash = |t: &str| {
            t.chars()
                .filter(|c| *c != '-' && *c != '_')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        let wanted = squash(s);
        Mutant::ALL
            .into_iter()
            .find(|m| squash(m.name()) == wanted)
            .ok_or_else(|| UnknownMutant(s.to_owned()))
    }
}

/// A mutant name that is not one of [`Mutant::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mutant `{0}`; one of: {names}", names = Mutant::ALL.map(Mutant::name).join(", "))]
pub struct UnknownMutant(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_are_unique() {
        for m in Mutant::ALL {
            assert_eq!(m.name().parse::<Mutant>(), Ok(m));
            assert_eq!(format!("{m:?}").parse::<Mutant>(), Ok(m));
        }
        assert_eq!("NO_RETRY".parse::<Mutant>(), Ok(Mutant::NoRetry));
        assert!("nope"
            .parse::<Mutant>()
            .err()
            .is_some_and(|e| e.to_string().contains("no-batching")));
        let mut names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Mutant::ALL.len());
    }
}
