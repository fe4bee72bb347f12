//! `reference-sink`: the reference sink as a sink protocol v1 command.
//!
//! Reads `TECTON_URL`, `TECTON_API_KEY`, `TECTON_WORKSPACE`, `TECTON_PUSH_SOURCE` and the
//! `SINK_*` hints from the environment and the records as JSON Lines from stdin; at EOF it
//! delivers them, prints the metrics line on stdout and exits 0 when every record was
//! acknowledged, 1 when it gave up on some (saying which on stderr), 2 on bad usage or input.
//!
//! `--mutant <name>` runs one of the mutant sinks instead (see `--help` for the names).

use std::io::Read as _;
use std::process::ExitCode;

use conformance::sink::reference::ReferenceSink;
use conformance::sink::{protocol, Sink};
use conformance::sink::{Mutant, MutantSink};

const USAGE: &str = "usage: reference-sink [--mutant <name>]

Sink protocol v1: configuration from TECTON_URL, TECTON_API_KEY, TECTON_WORKSPACE,
TECTON_PUSH_SOURCE, SINK_BATCH_SIZE, SINK_MAX_RETRIES, SINK_TIMEOUT_S, SINK_SEED;
records as JSON Lines on stdin (EOF = flush and exit). Prints
{\"records_written\",\"write_requests\",\"write_errors\"} on stdout at exit.
Exit 0: every record acknowledged; 1: gave up on some; 2: bad usage or input.";

fn main() -> ExitCode {
    let mutant = match parse_args(std::env::args().skip(1)) {
        Ok(Some(Args::Help)) => {
            println!("{USAGE}\n\nmutants:");
            for m in Mutant::ALL {
                println!("  {:<26} {}", m.name(), m.defect());
            }
            return ExitCode::SUCCESS;
        }
        Ok(Some(Args::Mutant(m))) => Some(m),
        Ok(None) => None,
        Err(e) => return usage_error(&e),
    };
    let env = match protocol::env_from(|k| std::env::var(k).ok()) {
        Ok(env) => env,
        Err(e) => return usage_error(&e.to_string()),
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        return input_error(&format!("cannot read stdin: {e}"));
    }
    let records = match protocol::from_jsonl(&input) {
        Ok(r) => r,
        Err(e) => return input_error(&format!("stdin: {e}")),
    };
    drop(input);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return input_error(&format!("cannot start the async runtime: {e}")),
    };
    let sink: Box<dyn Sink> = match mutant {
        Some(m) => Box::new(MutantSink::new(m)),
        None => Box::new(ReferenceSink::new()),
    };
    let outcome = runtime.block_on(sink.run(&env, records));
    eprint!("{}", outcome.stderr);
    if let Some(metrics) = &outcome.metrics {
        println!("{}", protocol::metrics_line(metrics));
    }
    match outcome.exit_code {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(1),
    }
}

enum Args {
    Help,
    Mutant(Mutant),
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Some(Args::Help)),
            "--mutant" => {
                let name = args.next().ok_or("--mutant needs a name")?;
                parsed = Some(Args::Mutant(name.parse().map_err(
                    |e: conformance::sink::defect::UnknownMutant| e.to_string(),
                )?));
            }
            other => match other.strip_prefix("--mutant=") {
                Some(name) => {
                    parsed = Some(Args::Mutant(name.parse().map_err(
                        |e: conformance::sink::defect::UnknownMutant| e.to_string(),
                    )?))
                }
                None => return Err(format!("unexpected argument `{other}`")),
            },
        }
    }
    Ok(parsed)
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("reference-sink: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

fn input_error(message: &str) -> ExitCode {
    eprintln!("reference-sink: {message}");
    ExitCode::from(2)
}
