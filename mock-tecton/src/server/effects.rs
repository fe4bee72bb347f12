//! What faults do to an exchange on the wire: answer with an error status or garbage instead
//! of handling, wait, hold the request, reset the connection, or send the answer slowly or cut
//! short. The answers themselves come from the synchronous core and [`reject`].

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::body::ScriptedBody;
use super::conn::ConnControl;
use super::record::ExchangeRecord;
use crate::decisions;
use crate::exchange::{Answer, Api};
use crate::faults::{Decision, FaultAction};
use crate::journal::Outcome;
use crate::rejection::{reject, ErrorFormat, Rejection};

/// An exchange that ends before (or instead of) normal handling.
pub(super) enum Early {
    /// Answer with this.
    Answer(Answer),
    /// The connection was (or will be) cut; the journal entry is already complete.
    Cut(Response),
}

impl Early {
    pub(super) fn into_response(self, record: ExchangeRecord) -> Response {
        match self {
            Early::Answer(answer) => record.respond(answer),
            Early::Cut(resp) => {
                drop(record);
                resp
            }
        }
    }
}

/// A fault rule's status. Rules are validated when installed (400..=599 for errors,
/// 200..=599 for garbage), so the fallback is never taken.
fn rule_status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Applies the faults that act before the request is handled: error statuses, garbage,
/// latency, hangs and resets before the body is read. `None` means "go on handling".
pub(super) async fn act_before_handling(
    decision: &Decision,
    record: &mut ExchangeRecord,
    control: Option<&ConnControl>,
    api: &Api,
) -> Option<Early> {
    match &decision.action {
        FaultAction::Status {
            status,
            retry_after_s,
            message,
        } => {
            let why = Rejection::Status {
                status: rule_status(*status),
                message: message.clone(),
            };
            let mut answer = reject(ErrorFormat::of(api), why);
            if let Some(s) = retry_after_s {
                answer
                    .headers
                    .insert(header::RETRY_AFTER, HeaderValue::from(*s));
            }
            Some(Early::Answer(answer))
        }
        FaultAction::Garbage { status } => Some(Early::Answer(Answer {
            status: rule_status(status.unwrap_or(200)),
            headers: axum::http::HeaderMap::new(),
            body: garbage(decision.random),
        })),
        FaultAction::Latency { ms, max_ms } => {
            tokio::time::sleep(Duration::from_millis(latency_ms(
                *ms,
                *max_ms,
                decision.random,
            )))
            .await;
            None
        }
        FaultAction::Hang { max_ms } => {
            let max = Duration::from_millis(max_ms.unwrap_or(decisions::DEFAULT_HANG_MS));
            Some(hang(record, control, max).await)
        }
        // The exchange resets before reading for rules decided early; a rule decided after the
        // body (validation forbids that combination) would still get the reset it asked for.
        FaultAction::ResetBeforeBody => Some(Early::Cut(
            cut_connection(record, control, Outcome::Reset).await,
        )),
        FaultAction::Pass
        | FaultAction::ResetAfterBody { .. }
        | FaultAction::Truncate
        | FaultAction::Dribble { .. }
        | FaultAction::SchemaDrift { .. } => None,
    }
}

/// Sends the answer, misbehaving as the fault that acts after handling asks: reset after the
/// body was read, a body cut in half, or a body sent slowly.
pub(super) async fn deliver(
    mut record: ExchangeRecord,
    control: Option<&ConnControl>,
    answer: Answer,
    fault: Option<FaultAction>,
) -> Response {
    match fault {
        Some(FaultAction::ResetAfterBody { .. }) => {
            record.entry.status = answer.status.as_u16();
            record.entry.response_body = answer.body;
            cut_connection(&mut record, control, Outcome::Reset).await
        }
        Some(FaultAction::Truncate) => {
            record.entry.outcome = Outcome::Truncated;
            let scripted = ScriptedBody::truncated(answer.body.clone());
            record.respond_scripted(answer, scripted)
        }
        Some(FaultAction::Dribble {
            chunk_bytes,
            interval_ms,
        }) => {
            let interval = Duration::from_millis(interval_ms.unwrap_or(100));
            let scripted =
                ScriptedBody::dribble(answer.body.clone(), chunk_bytes.unwrap_or(8), interval);
            record.respond_scripted(answer, scripted)
        }
        // These acted before handling (or never act): the answer goes out as it is.
        None
        | Some(
            FaultAction::Pass
            | FaultAction::Status { .. }
            | FaultAction::Latency { .. }
            | FaultAction::Hang { .. }
            | FaultAction::ResetBeforeBody
            | FaultAction::Garbage { .. }
            | FaultAction::SchemaDrift { .. },
        ) => record.respond(answer),
    }
}

/// The feature server's 504 when a request outlives the profile's timeout.
pub(super) fn serving_timeout(record: &mut ExchangeRecord, limit: Duration) -> Early {
    let label = format!("tecton profile: 504 after {} ms", limit.as_millis());
    record.entry.fault = Some(match record.entry.fault.take() {
        Some(earlier) => format!("{earlier}; {label}"),
        None => label,
    });
    let why = Rejection::Status {
        status: StatusCode::GATEWAY_TIMEOUT,
        message: None,
    };
    Early::Answer(reject(ErrorFormat::Serving, why))
}

/// Holds the request until the client hangs up, or until `max`, then closes without answering.
async fn hang(record: &mut ExchangeRecord, control: Option<&ConnControl>, max: Duration) -> Early {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        if control.is_some_and(ConnControl::client_closed) {
            record.entry.outcome = Outcome::ClientGone;
            return Early::Cut(Response::new(Body::empty()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    record.entry.outcome = Outcome::Abandoned;
    match control {
        Some(c) => {
            c.close();
            std::future::pending::<()>().await;
            Early::Cut(Response::new(Body::empty()))
        }
        None => Early::Cut(Response::new(Body::empty())),
    }
}

/// Resets the connection; the handler is dropped by the connection task, which journals it.
pub(super) async fn cut_connection(
    record: &mut ExchangeRecord,
    control: Option<&ConnControl>,
    outcome: Outcome,
) -> Response {
    record.entry.outcome = outcome;
    if let Some(c) = control {
        c.reset();
        std::future::pending::<()>().await;
    }
    Response::new(Body::empty())
}

fn latency_ms(ms: u64, max_ms: Option<u64>, random: u64) -> u64 {
    match max_ms {
        Some(max) if max > ms => ms + random % (max - ms + 1),
        _ => ms,
    }
}

/// Seeded bytes that are not JSON.
fn garbage(random: u64) -> Bytes {
    let mut x = random;
    let mut out = b"\x00<garbage>".to_vec();
    for _ in 0..48 {
        x = crate::faults::mix(x, 1, 2);
        out.push((x & 0xff) as u8);
    }
    Bytes::from(out)
}
