//! Fault injection: rules that make the mock misbehave the way Tecton (or the network in front
//! of it) can, so that a sink's retries, backoff, timeouts and loss handling can be tested.
//!
//! A [`FaultRule`] has filters (path, workspace, push source, which matching request, when),
//! a firing policy (always, `times`, `probability`) and either one [`FaultAction`] or a script:
//! a linear list of steps (`429`, then a hang, then pass) or named states with transitions.
//! Rules are tried in order; the first that fires decides the exchange. Every fault applied is
//! written to the journal entry of its exchange.
//!
//! Randomness (probabilities, latency ranges, garbage bytes) comes from the [`FaultSet`]'s seed
//! mixed with the rule's index and the request's match index, never from shared RNG state, so
//! the same seed gives the same faults whatever the interleaving of concurrent requests.
//!
//! Rules are installed from a TOML or JSON file (`serve --faults`), from the library
//! ([`crate::MockTecton::set_faults`]) or live through `POST /_mock/faults`.

mod engine;
mod model;

pub(crate) use engine::mix;
pub use engine::Decision;
pub(crate) use engine::{FaultEngine, RequestFacts};
pub use model::*;
