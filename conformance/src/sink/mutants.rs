//! Mutant sinks: the [reference sink](super::reference) with exactly one defect each.
//!
//! They exist to test the checks: every mutant must make the check its doc comment names
//! (a check id such as `retry_bound`) fail or warn, while the reference passes them all. A mutant
//! is the reference code with one switch on, so any difference in the journal is that defect and nothing else.
//!
//! ```no_run
//! # async fn demo(env: conformance::sink::SinkEnv) {
//! use conformance::sink::{Mutant, MutantSink};
//! use conformance::sink::Sink;
//! for mutant in Mutant::ALL {
//!     let outcome = MutantSink::new(mutant).run(&env, Vec::new()).await;
//!     println!("{mutant}: exit {:?}", outcome.exit_code);
//! }
//! # }
//! ```

use super::backoff::Backoff;
use super::defect::Mutant;
use super::reference::ReferenceSink;
use super::{BoxFuture, Record, Sink, SinkEnv, SinkOutcome};

/// The reference sink with one defect switched on.
#[derive(Debug, Clone)]
pub struct MutantSink {
    mutant: Mutant,
    inner: ReferenceSink,
}

impl MutantSink {
    /// The reference sink with `mutant`'s defect.
    pub fn new(mutant: Mutant) -> Self {
        MutantSink {
            mutant,
            inner: ReferenceSink::with_defect(Some(mutant)),
        }
    }

    /// The same mutant with a different backoff policy (tests use a short one).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.inner = self.inner.with_backoff(backoff);
        self
    }

    /// The defect.
    pub fn mutant(&self) -> Mutant {
        self.mutant
    }
}

impl Sink for MutantSink {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn run<'a>(&'a self, env: &'a SinkEnv, records: Vec<Record>) -> BoxFuture<'a, SinkOutcome> {
        self.inner.run(env, records)
    }
}
