//! `tecton-sim offline`: point-in-time features for a spine, from a running mock or from
//! records loaded into an in-process one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::features::{in_process, read_spine, remote, service_name, write_out, DataSource};

/// Output formats of `offline`.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RowFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// Arguments of `offline`.
#[derive(Args)]
pub(crate) struct OfflineArgs {
    #[command(flatten)]
    data: DataSource,
    /// JSON Lines of spine rows: join keys and a timestamp.
    #[arg(long, value_name = "FILE")]
    spine: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RowFormat::Jsonl)]
    format: RowFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `offline`.
pub(crate) fn run(args: OfflineArgs) -> anyhow::Result<ExitCode> {
    let (spine_json, spine) = read_spine(&args.spine, &args.data.timestamp_field)?;
    let rows: Vec<Value> = if let Some(url) = &args.data.url {
        let mut body = json!({"spine": spine_json, "timestamp_field": args.data.timestamp_field});
        if let Some(s) = &args.data.service {
            body["service"] = json!(s);
        }
        match remote(url, "offline/features", &body)?
            .get_mut("rows")
            .map(Value::take)
        {
            Some(Value::Array(rows)) => rows,
            _ => bail!("the mock's answer has no rows"),
        }
    } else {
        let repo = args.data.repo.load()?;
        let service = service_name(&args.data, &repo)?;
        let (state, _) = in_process(repo, &args.data, None, None)?;
        let fs = state
            .repo()
            .feature_service(&service)
            .with_context(|| format!("no feature service named `{service}`"))?;
        let features = mock_tecton::serving::served_features(state.repo(), fs);
        let values = mock_tecton::retrieval::offline_features(&state, &features, &spine)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        mock_tecton::retrieval::rows_to_json(&features, &spine, &values)
    };
    let text = match args.format {
        RowFormat::Jsonl => rows.iter().map(|r| format!("{r}\n")).collect(),
        RowFormat::Csv => to_csv(&rows),
    };
    write_out(args.out.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}

/// RFC 4180 CSV: the union of keys in first-seen order; nested values as JSON text.
fn to_csv(rows: &[Value]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        if let Value::Object(o) = row {
            for k in o.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match row.get(c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => quote(s),
                Some(other) => quote(&other.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}
