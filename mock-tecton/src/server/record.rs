//! The journal side of an exchange: an entry that is written when the exchange ends, however
//! it ends (answered, cut by a fault, or abandoned by the client).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;

use super::body::ScriptedBody;
use super::conn::ConnControl;
use crate::clock::wall_now;
use crate::exchange::Answer;
use crate::faults::Decision;
use crate::journal::{Entry, Outcome};
use crate::state::MockState;

/// Records an exchange when dropped, so a client that hangs up, or a fault that cuts the
/// connection, still leaves a journal entry with the right outcome.
pub(super) struct ExchangeRecord {
    state: Arc<MockState>,
    /// The entry as it stands; written to the journal on drop.
    pub(super) entry: Entry,
    started: Instant,
    control: Option<Arc<ConnControl>>,
}

impl ExchangeRecord {
    pub(super) fn begin(
        state: Arc<MockState>,
        method: &Method,
        path: &str,
        control: Option<Arc<ConnControl>>,
    ) -> Self {
        let entry = Entry {
            seq: state.journal.next_seq(),
            received_at: wall_now(),
            mock_time: state.clock.now(),
            method: method.to_string(),
            path: path.to_owned(),
            // Until a response leaves, the exchange counts as abandoned by the client.
            outcome: Outcome::ClientGone,
            ..Entry::default()
        };
        ExchangeRecord {
            state,
            entry,
            started: Instant::now(),
            control,
        }
    }

    /// Names the fault acting on the exchange.
    pub(super) fn note_fault(&mut self, decision: &Decision) {
        self.entry.fault = Some(decision.label.clone());
        self.entry.fault_action = Some(decision.action.clone());
    }

    /// Builds the response and marks the exchange answered.
    pub(super) fn respond(self, answer: Answer) -> Response {
        self.respond_with(answer, None)
    }

    /// Builds a response whose body misbehaves; the exchange is journaled when that body ends,
    /// so a client that leaves mid-body shows as gone.
    pub(super) fn respond_scripted(self, answer: Answer, scripted: ScriptedBody) -> Response {
        self.respond_with(answer, Some(scripted))
    }

    fn respond_with(mut self, answer: Answer, scripted: Option<ScriptedBody>) -> Response {
        let Answer {
            status,
            headers,
            body,
        } = answer;
        self.entry.status = status.as_u16();
        self.entry.response_body = body.clone();
        // A fault may have held the request past the client's patience: then nobody reads this.
        let held_and_gone = self.entry.fault.is_some()
            && self
                .control
                .as_deref()
                .is_some_and(ConnControl::client_closed);
        if self.entry.outcome == Outcome::ClientGone && !held_and_gone {
            self.entry.outcome = Outcome::Responded;
        }
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().extend(headers);
        match scripted {
            None => *resp.body_mut() = Body::from(body),
            Some(scripted) => {
                // The declared length is the full body's, so a cut body is a short read.
                resp.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                let mut record = self;
                *resp.body_mut() = Body::new(scripted.on_end(move |completed| {
                    if !completed && record.entry.outcome == Outcome::Responded {
                        record.entry.outcome = Outcome::ClientGone;
                    }
                    drop(record);
                }));
            }
        }
        resp
    }
}

impl Drop for ExchangeRecord {
    fn drop(&mut self) {
        let mut entry = std::mem::take(&mut self.entry);
        entry.duration_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::info!(
            method = %entry.method,
            path = %entry.path,
            status = entry.status,
            fault = %entry.fault.as_deref().unwrap_or("-"),
            ms = entry.duration_us as f64 / 1e3,
            outcome = ?entry.outcome,
            "request"
        );
        self.state.journal.record(entry);
    }
}
