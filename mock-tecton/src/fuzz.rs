//! Structured fuzzing (feature `fuzzing`): inputs built by [`arbitrary`] from raw bytes, and the
//! properties each must hold. The same checks run under `cargo fuzz` (coverage-guided, see
//! `fuzz/`) and as a bounded, seeded test in CI (`tests/fuzz.rs`).
//!
//! - [`IngestCase`]: a Stream Ingest API request for the demo repository: envelope (dialect,
//!   workspace, `dry_run`, push sources, unknown fields, truncation), records whose fields are
//!   valid, null, missing or of a wrong type, and timestamps in every accepted RFC 3339 form or
//!   garbage. [`check_ingest`]: no panic; a refusal is a Tecton-format error with a 4xx status;
//!   a fully valid request is accepted; an accepted record reaches the offline store with the
//!   values that were generated, and a record with a wrong-typed field is never accepted.
//! - [`RepoCase`]: feature repository TOML assembled from valid and broken pieces;
//!   [`check_repo`]: no panic, every error names where it is.
//! - [`FaultCase`]: fault rules as JSON; [`check_faults`]: no panic while parsing, installing
//!   and deciding on requests.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{json, Map, Value as Json};

use crate::config::Config;
use crate::faults::{FaultEngine, FaultSet, RequestFacts};
use crate::ingest::{handle_body, Dialect};
use crate::repo::Repository;
use crate::schema::Value;
use crate::state::MockState;

/// A field of a generated record.
#[derive(Debug, Clone)]
pub enum FieldCase<T> {
    /// A value of the field's type.
    Valid(T),
    /// An explicit `null`.
    Null,
    /// The field is left out.
    Missing,
    /// A JSON value that no reading of the field's type accepts.
    WrongType(WrongType),
}

/// A JSON value of the wrong type for every field of the demo schema it is used on.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum WrongType {
    /// `true` or `false`.
    Bool(bool),
    /// An object.
    Object,
    /// An array.
    Array,
}

impl<'a, T: Arbitrary<'a>> Arbitrary<'a> for FieldCase<T> {
    // Mostly valid, so that whole records often are and the write path is reached.
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=15)? {
            0 => FieldCase::Null,
            1 => FieldCase::Missing,
            2 => FieldCase::WrongType(u.arbitrary()?),
            _ => FieldCase::Valid(u.arbitrary()?),
        })
    }
}

/// True with probability `percent` / 100, read from the input.
fn chance(u: &mut Unstructured<'_>, percent: u8) -> arbitrary::Result<bool> {
    Ok(u.int_in_range(0u8..=99)? < percent)
}

impl WrongType {
    fn json(self) -> Json {
        match self {
            WrongType::Bool(b) => Json::Bool(b),
            WrongType::Object => json!({"nested": 1}),
            WrongType::Array => json!([1, "x"]),
        }
    }
}

/// A timestamp: a valid instant in one of the accepted spellings, or garbage.
#[derive(Debug, Clone)]
pub enum TimestampCase {
    /// An instant between 1970 and 2099, written with `digits` fraction digits (0 to 9) and
    /// an offset of `offset_min` minutes (`Z` when zero and `zulu` is set).
    Valid {
        /// Seconds since 1970-01-01T00:00:00Z, reduced into range.
        secs: u32,
        /// Nanoseconds, reduced below 10⁹ and to the precision written.
        nanos: u32,
        /// Fraction digits written (reduced to 0..=9).
        digits: u8,
        /// Offset from UTC in minutes (reduced to −23:59..=+23:59).
        offset_min: i16,
        /// `Z` rather than `+00:00` for a zero offset.
        zulu: bool,
    },
    /// Any string.
    Garbage(String),
}

impl<'a> Arbitrary<'a> for TimestampCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        if chance(u, 10)? {
            return Ok(TimestampCase::Garbage(u.arbitrary()?));
        }
        Ok(TimestampCase::Valid {
            secs: u.arbitrary()?,
            nanos: u.arbitrary()?,
            digits: u.arbitrary()?,
            offset_min: u.arbitrary()?,
            zulu: u.arbitrary()?,
        })
    }
}

/// One generated `transactions` record of the demo repository.
#[derive(Debug, Clone)]
pub struct RecordCase {
    user_id: FieldCase<String>,
    transaction_id: FieldCase<String>,
    merchant: FieldCase<String>,
    amt: FieldCase<f64>,
    is_fraud: FieldCase<i64>,
    timestamp: FieldCase<TimestampCase>,
    /// A field the schema does not have.
    extra: Option<String>,
}

/// Which workspace the envelope names.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum WorkspaceCase {
    /// `prod`, the demo's live workspace.
    Prod,
    /// A workspace that does not exist.
    Unknown,
    /// A number instead of a name.
    WrongType,
    /// No workspace field.
    Missing,
}

/// Which service account sends the request.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum KeyCase {
    /// `demo-editor-key`: may write.
    Editor,
    /// `demo-viewer-key`: may not write.
    Viewer,
    /// `demo-consumer-key`: may not write.
    Consumer,
}

impl<'a> Arbitrary<'a> for RecordCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(RecordCase {
            user_id: u.arbitrary()?,
            transaction_id: u.arbitrary()?,
            merchant: u.arbitrary()?,
            amt: u.arbitrary()?,
            is_fraud: u.arbitrary()?,
            timestamp: u.arbitrary()?,
            extra: if chance(u, 5)? {
                Some(u.arbitrary()?)
            } else {
                None
            },
        })
    }
}

/// A Stream Ingest API request for the demo repository.
#[derive(Debug, Clone)]
pub struct IngestCase {
    v2: bool,
    key: KeyCase,
    workspace: WorkspaceCase,
    /// `None` leaves `dry_run` out.
    dry_run: Option<bool>,
    /// `false` names a push source the repository does not have.
    known_source: bool,
    records: Vec<RecordCase>,
    /// Adds an envelope field Tecton does not define.
    unknown_field: bool,
    /// Cuts the body to this many bytes.
    truncate: Option<u16>,
}

impl<'a> Arbitrary<'a> for IngestCase {
    // Each way to be refused is the exception, so that clean requests are common.
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let v2 = u.arbitrary()?;
        let key = if chance(u, 85)? {
            KeyCase::Editor
        } else {
            u.arbitrary()?
        };
        let workspace = if chance(u, 90)? {
            WorkspaceCase::Prod
        } else {
            u.arbitrary()?
        };
        let dry_run = if chance(u, 85)? {
            Some(false)
        } else {
            u.arbitrary()?
        };
        let known_source = chance(u, 95)?;
        let count = u.int_in_range(0usize..=12)?;
        let records = (0..count)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<_>>()?;
        let unknown_field = chance(u, 5)?;
        let truncate = if chance(u, 5)? {
            Some(u.arbitrary()?)
        } else {
            None
        };
        Ok(IngestCase {
            v2,
            key,
            workspace,
            dry_run,
            known_source,
            records,
            unknown_field,
            truncate,
        })
    }
}

/// Everything `check_*` found wrong, for the failure message (with the case and its seed).
pub type Finding = String;

const TS_RANGE_SECS: u32 = 4_102_444_800; // 2100-01-01: keeps every instant a plain RFC 3339 year.

impl TimestampCase {
    /// The JSON text and, when valid, the instant in nanoseconds since the epoch.
    fn render(&self) -> (Json, Option<i64>) {
        match self {
            TimestampCase::Garbage(s) => (Json::String(s.clone()), None),
            TimestampCase::Valid {
                secs,
                nanos,
                digits,
                offset_min,
                zulu,
            } => {
                let instant = i64::from(*secs % TS_RANGE_SECS);
                let digits = u32::from(*digits % 10);
                let scale = 10u32.pow(9 - digits);
                let nanos = (nanos % 1_000_000_000) / scale * scale;
                let offset = i64::from(*offset_min % (24 * 60));
                // The local wall time that, at this offset, is the instant.
                let local = instant + offset * 60;
                let mut text = civil(local);
                if digits > 0 {
                    let frac = format!("{:09}", nanos);
                    text.push('.');
                    text.push_str(&frac[..digits as usize]);
                }
                if offset == 0 && *zulu {
                    text.push('Z');
                } else {
                    let sign = if offset < 0 { '-' } else { '+' };
                    let abs = offset.abs();
                    text.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60));
                }
                let ns = instant * 1_000_000_000 + i64::from(nanos);
                (Json::String(text), Some(ns))
            }
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since the epoch (proleptic Gregorian, days-from-civil
/// inverted), written here rather than borrowed from the schema module so that the check does
/// not trust the code it checks.
fn civil(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What a generated record must become in the offline store, if it is accepted.
struct Expected {
    values: Vec<Option<Value>>,
    /// A field is of a wrong type: the record must be refused.
    wrong: bool,
    /// Every field is present and valid: nothing in the record may be refused.
    clean: bool,
}

impl RecordCase {
    fn render(&self) -> (Json, Expected) {
        let mut obj = Map::new();
        let mut values = Vec::new();
        let mut wrong = false;
        let mut clean = true;
        let mut put = |name: &str, field: Option<(Json, Option<Value>)>, state: FieldState| {
            match state {
                FieldState::Wrong => {
                    wrong = true;
                    clean = false;
                }
                FieldState::NotClean => clean = false,
                FieldState::Clean => {}
            }
            match field {
                Some((json, value)) => {
                    obj.insert(name.to_owned(), json);
                    values.push(value);
                }
                None => values.push(None),
            }
        };
        let string = |f: &FieldCase<String>, key: bool| match f {
            // An empty join key is refused by design: only non-empty ones are "clean".
            FieldCase::Valid(s) if key && s.is_empty() => {
                (Some((Json::String(s.clone()), None)), FieldState::NotClean)
            }
            FieldCase::Valid(s) => (
                Some((
                    Json::String(s.clone()),
                    Some(Value::String(s.as_str().into())),
                )),
                FieldState::Clean,
            ),
            other => other_field(other),
        };
        let (f, s) = string(&self.user_id, true);
        put("user_id", f, s);
        let (f, s) = string(&self.transaction_id, false);
        put("transaction_id", f, s);
        let (f, s) = string(&self.merchant, false);
        put("merchant", f, s);
        let (f, s) = match &self.amt {
            FieldCase::Valid(x) if x.is_finite() => {
                (Some((json!(x), Some(Value::Float(*x)))), FieldState::Clean)
            }
            FieldCase::Valid(_) => (None, FieldState::NotClean),
            other => other_field(other),
        };
        put("amt", f, s);
        let (f, s) = match &self.is_fraud {
            FieldCase::Valid(n) => (Some((json!(n), Some(Value::Int(*n)))), FieldState::Clean),
            other => other_field(other),
        };
        put("is_fraud", f, s);
        let (f, s) = match &self.timestamp {
            FieldCase::Valid(ts) => match ts.render() {
                (text, Some(ns)) => (Some((text, Some(Value::Timestamp(ns)))), FieldState::Clean),
                (text, None) => (Some((text, None)), FieldState::NotClean),
            },
            other => other_field(other),
        };
        put("timestamp", f, s);
        if let Some(extra) = &self.extra {
            obj.insert(format!("extra_{extra}"), json!(1));
            clean = false;
        }
        (
            Json::Object(obj),
            Expected {
                values,
                wrong,
                clean,
            },
        )
    }
}

#[derive(Clone, Copy)]
enum FieldState {
    Clean,
    NotClean,
    Wrong,
}

/// A null, missing or wrong-typed field of any type.
fn other_field<T>(f: &FieldCase<T>) -> (Option<(Json, Option<Value>)>, FieldState) {
    match f {
        FieldCase::Null => (Some((Json::Null, Some(Value::Null))), FieldState::NotClean),
        FieldCase::Missing => (None, FieldState::NotClean),
        FieldCase::WrongType(w) => (Some((w.json(), None)), FieldState::Wrong),
        FieldCase::Valid(_) => (None, FieldState::NotClean),
    }
}

impl IngestCase {
    /// The request body and the expectation for each record.
    fn render(&self) -> (Vec<u8>, Vec<Expected>) {
        let (ws_key, dry_key) = if self.v2 {
            ("workspaceName", "dryRun")
        } else {
            ("workspace_name", "dry_run")
        };
        let mut env = Map::new();
        match self.workspace {
            WorkspaceCase::Prod => drop(env.insert(ws_key.into(), json!("prod"))),
            WorkspaceCase::Unknown => drop(env.insert(ws_key.into(), json!("nowhere"))),
            WorkspaceCase::WrongType => drop(env.insert(ws_key.into(), json!(7))),
            WorkspaceCase::Missing => {}
        }
        if let Some(d) = self.dry_run {
            env.insert(dry_key.into(), json!(d));
        }
        let mut expected = Vec::new();
        let records: Vec<Json> = self
            .records
            .iter()
            .map(|r| {
                let (record, e) = r.render();
                expected.push(e);
                if self.v2 {
                    record
                } else {
                    json!({ "record": record })
                }
            })
            .collect();
        let source = if self.known_source {
            "transactions"
        } else {
            "no_such_source"
        };
        env.insert("records".into(), json!({ source: records }));
        if self.unknown_field {
            env.insert("surprise".into(), json!(true));
        }
        let mut body = serde_json::to_vec(&Json::Object(env)).unwrap_or_default();
        if let Some(n) = self.truncate {
            body.truncate(usize::from(n));
        }
        (body, expected)
    }

    /// True when nothing about the request may be refused.
    fn clean(&self, expected: &[Expected]) -> bool {
        matches!(self.key, KeyCase::Editor)
            && matches!(self.workspace, WorkspaceCase::Prod)
            && self.dry_run == Some(false)
            && self.known_source
            && !self.unknown_field
            && self.truncate.is_none()
            && (1..=crate::decisions::DEFAULT_RECORDS_PER_SOURCE).contains(&expected.len())
            && expected.iter().all(|e| e.clean)
    }
}

/// A fresh demo mock state, shared by many cases (records are checked by their request).
pub fn demo_state() -> MockState {
    MockState::new(&Config::default())
}

/// Runs one ingest case through the same entry the server uses, and checks every property.
pub fn check_ingest(state: &MockState, case: &IngestCase, request_seq: u64) -> Result<(), Finding> {
    let (body, expected) = case.render();
    let key = match case.key {
        KeyCase::Editor => "demo-editor-key",
        KeyCase::Viewer => "demo-viewer-key",
        KeyCase::Consumer => "demo-consumer-key",
    };
    let account = state
        .repo
        .account_for_key(key)
        .ok_or_else(|| format!("the demo has no account for {key}"))?;
    let mut ctx = state.ingest_context(request_seq);
    // Timestamps span 1970..2100; the TTL check is the clock's business, not the parser's.
    ctx.check_ttl = false;
    let dialect = if case.v2 { Dialect::V2 } else { Dialect::V1 };
    match handle_body(&ctx, account, dialect, &body) {
        Err(e) => {
            let status = e.status().as_u16();
            if !matches!(status, 400 | 401 | 403 | 404 | 413) {
                return Err(format!("refused with status {status}"));
            }
            tecton_error_shape(&e.body())?;
            if case.clean(&expected) {
                return Err(format!("a fully valid request was refused: {}", e.body()));
            }
            Ok(())
        }
        Ok(_) => {
            if let Some(i) = expected.iter().position(|e| e.wrong) {
                return Err(format!(
                    "record {i} has a wrong-typed field but was accepted"
                ));
            }
            if case.dry_run != Some(false) {
                return Ok(()); // a dry run writes nothing
            }
            let rows: Vec<_> = state
                .offline
                .rows(0)
                .map_err(|e| format!("the offline store cannot be read: {e}"))?
                .into_iter()
                .filter(|r| r.request == request_seq)
                .collect();
            if rows.len() != expected.len() {
                return Err(format!(
                    "{} records accepted, {} offline rows",
                    expected.len(),
                    rows.len()
                ));
            }
            for (i, (row, e)) in rows.iter().zip(&expected).enumerate() {
                for (f, want) in e.values.iter().enumerate() {
                    let got = row.values.get(f);
                    if let (Some(want), Some(got)) = (want, got) {
                        if want != got {
                            return Err(format!(
                                "record {i} field {f}: sent {want:?}, offline has {got:?}"
                            ));
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Tecton's error bodies: `{"requestError": {"errorType", "errorMessage"}}` or
/// `{"recordErrors": [{"errorType", "errorMessage", …}, …]}`.
fn tecton_error_shape(body: &Json) -> Result<(), Finding> {
    let named = |e: &Json| e["errorType"].is_string() && e["errorMessage"].is_string();
    let ok = match (body.get("requestError"), body.get("recordErrors")) {
        (Some(e), None) => named(e),
        (None, Some(Json::Array(list))) => !list.is_empty() && list.iter().all(named),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("not a Tecton error body: {body}"))
    }
}

/// A repository TOML assembled from pieces of the demo and broken variants of them.
#[derive(Debug, Clone, Arbitrary)]
pub struct RepoCase {
    /// Lines of the demo repository to drop (indices reduced modulo its length).
    drop_lines: Vec<u16>,
    /// Lines to replace with a broken variant: (line index, variant).
    break_lines: Vec<(u16, BrokenLine)>,
}

/// A broken replacement for one line of a repository file.
#[derive(Debug, Clone, Arbitrary)]
pub enum BrokenLine {
    /// `key = <int>` where a string or duration is expected.
    Number(String, i64),
    /// `key = "<any string>"`.
    Text(String, String),
    /// A TOML datetime.
    Datetime(String),
    /// Raw text, likely a syntax error.
    Raw(String),
}

/// The demo repository's TOML (the input the repository cases start from).
const DEMO_TOML: &str = include_str!("repo/default.toml");

impl RepoCase {
    /// The TOML text.
    pub fn render(&self) -> String {
        let mut lines: Vec<String> = DEMO_TOML.lines().map(str::to_owned).collect();
        let n = lines.len().max(1);
        for (i, broken) in &self.break_lines {
            let i = usize::from(*i) % n;
            if let Some(line) = lines.get_mut(i) {
                let key = line.split('=').next().unwrap_or("").trim().to_owned();
                *line = match broken {
                    BrokenLine::Number(k, v) => format!("{} = {v}", pick(&key, k)),
                    BrokenLine::Text(k, v) => format!("{} = {}", pick(&key, k), json!(v)),
                    BrokenLine::Datetime(k) => format!("{} = 2024-01-01T00:00:00Z", pick(&key, k)),
                    BrokenLine::Raw(s) => s.replace('\n', " "),
                };
            }
        }
        let mut drops: Vec<usize> = self
            .drop_lines
            .iter()
            .map(|i| usize::from(*i) % n)
            .collect();
        drops.sort_unstable();
        drops.dedup();
        for i in drops.into_iter().rev() {
            if i < lines.len() {
                lines.remove(i);
            }
        }
        lines.join("\n")
    }
}

/// The line's own key when it has one (so the break is a wrong value, not an unknown field),
/// else a generated one.
fn pick(own: &str, generated: &str) -> String {
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid(own) {
        own.to_owned()
    } else if valid(generated) {
        generated.to_owned()
    } else {
        "field".to_owned()
    }
}

/// Loads a repository case: no panic, and every error names its place in the file.
pub fn check_repo(case: &RepoCase) -> Result<(), Finding> {
    let text = case.render();
    match Repository::from_toml(&text, "fuzz.toml") {
        Ok(_) => Ok(()),
        Err(errors) => {
            let shown = errors.to_string();
            if shown.trim().is_empty() {
                return Err("an empty error for a refused repository".into());
            }
            if !shown.contains("fuzz.toml") {
                return Err(format!("an error that does not name the file: {shown}"));
            }
            Ok(())
        }
    }
}

/// Fault rules as JSON, from arbitrary keys and values around the real field names.
#[derive(Debug, Clone, Arbitrary)]
pub struct FaultCase {
    seed: Option<u64>,
    rules: Vec<RuleCase>,
    /// Paths of the requests to decide on after installing.
    requests: Vec<PathCase>,
}

/// One rule: an action kind and optional fields, any of which may hold a wrong type.
#[derive(Debug, Clone, Arbitrary)]
pub struct RuleCase {
    kind: ActionKind,
    status: Option<u16>,
    times: Option<i64>,
    probability: Option<f64>,
    from_request: Option<u64>,
    latency_ms: Option<u64>,
    path: Option<PathCase>,
    /// Replaces the `action` with a string.
    action_as_text: bool,
}

/// The action kinds the fault model knows, and one it does not.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ActionKind {
    /// `status`.
    Status,
    /// `latency`.
    Latency,
    /// `hang`.
    Hang,
    /// `reset_before_body`.
    ResetBeforeBody,
    /// `garbage`.
    Garbage,
    /// `truncate`.
    Truncate,
    /// An unknown kind.
    Unknown,
}

/// A request path.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum PathCase {
    /// `/ingest`.
    Ingest,
    /// `/v2/ingest`.
    IngestV2,
    /// The v1 get-features path.
    GetFeatures,
    /// An admin path.
    Admin,
}

impl PathCase {
    fn as_str(self) -> &'static str {
        match self {
            PathCase::Ingest => "/ingest",
            PathCase::IngestV2 => "/v2/ingest",
            PathCase::GetFeatures => "/api/v1/feature-service/get-features",
            PathCase::Admin => "/_mock/health",
        }
    }
}

impl FaultCase {
    /// The fault set as JSON, as `POST /_mock/faults` receives it.
    pub fn render(&self) -> Json {
        let rules: Vec<Json> = self
            .rules
            .iter()
            .map(|r| {
                let kind = match r.kind {
                    ActionKind::Status => "status",
                    ActionKind::Latency => "latency",
                    ActionKind::Hang => "hang",
                    ActionKind::ResetBeforeBody => "reset_before_body",
                    ActionKind::Garbage => "garbage",
                    ActionKind::Truncate => "truncate",
                    ActionKind::Unknown => "explode",
                };
                let mut action = json!({ "kind": kind });
                if let Some(s) = r.status {
                    action["status"] = json!(s);
                }
                if let Some(ms) = r.latency_ms {
                    action["ms"] = json!(ms);
                }
                let mut rule =
                    json!({ "action": if r.action_as_text { json!(kind) } else { action } });
                if let Some(t) = r.times {
                    rule["times"] = json!(t);
                }
                if let Some(p) = r.probability {
                    rule["probability"] = if p.is_finite() {
                        json!(p)
                    } else {
                        json!("NaN")
                    };
                }
                if let Some(n) = r.from_request {
                    rule["from_request"] = json!(n);
                }
                if let Some(p) = r.path {
                    rule["path"] = json!(p.as_str());
                }
                rule
            })
            .collect();
        let mut set = json!({ "rules": rules });
        if let Some(seed) = self.seed {
            set["seed"] = json!(seed);
        }
        set
    }
}

/// Parses, validates and installs a fault case, then decides on its requests: no panic, and a
/// set that fails validation is refused with a message rather than installed.
pub fn check_faults(case: &FaultCase) -> Result<(), Finding> {
    let json = case.render();
    let Ok(set) = serde_json::from_value::<FaultSet>(json.clone()) else {
        return Ok(()); // a shape error is reported by serde with the field; nothing to run
    };
    let engine = FaultEngine::new(FaultSet::default());
    match engine.install(set) {
        Err(message) if message.to_string().trim().is_empty() => {
            Err(format!("an empty refusal for {json}"))
        }
        Err(_) => Ok(()),
        Ok(()) => {
            for path in &case.requests {
                let _ = engine.decide(RequestFacts {
                    path: path.as_str(),
                    workspace: Some("prod"),
                    sources: &["transactions"],
                    body_read: true,
                });
            }
            let _ = engine.status();
            Ok(())
        }
    }
}

/// Builds a case from raw bytes (what `cargo fuzz` and the seeded CI test hand over).
pub fn case_from_bytes<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> arbitrary::Result<T> {
    T::arbitrary_take_rest(Unstructured::new(bytes))
}
