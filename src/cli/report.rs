//! `reins report`: what the dispatch record says, summed up.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::error::{CliError, CliResult, code};
use crate::store::dispatch::{self, RecordLine};
use crate::store::outcomes::Store;
use crate::store::paths::StateRoot;

/// Sum up the dispatch record: sessions, how many ended well, tokens and
/// time, per agent, model, adapter or day.
///
/// Every session writes one line to the record when it ends
/// ($REINS_STATE_DIR/dispatch.jsonl, or `run --record PATH`). A session
/// counts as ok when it ended with `success` (the agent exited 0) or
/// `stopped` (someone, or --auto-stop, stopped it); `failure`,
/// `boot_failure`, `disconnected` and `timeout` are failed. A session a
/// dispatch started counts as its attempt really went (the outcome store
/// says): a worker is ok when its attempt was accepted, a verifier when it
/// gave a verdict, whatever stopped them. Tokens are
/// summed over the sessions that reported them; `TOKENS` says for how many.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins report                           every session, by agent
  reins report --since 7d --by day       the last week, day by day
  reins report --by model --json
  reins report --record runs/dispatch.jsonl

Exit codes: 0 ok (also when nothing is recorded yet), 1 the record cannot
be read, 2 usage error.")]
pub(crate) struct Args {
    /// Only sessions that started at or after this: a date (2026-11-01), a
    /// time (RFC 3339), or an age (90m, 12h, 7d).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// How to group the sessions.
    #[arg(long, value_enum, default_value_t = By::Agent)]
    by: By,
    /// The record to read (default: $REINS_STATE_DIR/dispatch.jsonl).
    #[arg(long, value_name = "PATH")]
    record: Option<PathBuf>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum By {
    Agent,
    Model,
    Adapter,
    Day,
}

#[derive(Debug, Default, Serialize)]
struct Group {
    key: String,
    sessions: u64,
    ok: u64,
    failed: u64,
    success_rate: f64,
    /// Sessions whose token counts are known.
    tokens_known: u64,
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    duration_s: f64,
    mean_duration_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    record: PathBuf,
    since: Option<String>,
    by: &'static str,
    groups: Vec<Group>,
    total: Group,
    /// Lines of the record that could not be read.
    skipped_lines: usize,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let dispatched = dispatched_results(&state);
    let record = match args.record {
        Some(path) => path,
        None => state.root().join("dispatch.jsonl"),
    };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let (lines, skipped) = match dispatch::read_record(&record) {
        Ok(read) => read,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0),
        Err(err) => {
            return Err(CliError::failure(format!("cannot read {}: {err}", record.display())));
        }
    };
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut total = Group { key: "all".into(), ..Group::default() };
    for line in &lines {
        let started = text(&line.meta, "started_at");
        if let Some(since) = since {
            match started.as_deref().and_then(|s| s.parse::<Timestamp>().ok()) {
                Some(at) if at >= since => {}
                _ => continue,
            }
        }
        let key = match args.by {
            By::Agent => text(&line.meta, "agent"),
            By::Adapter => text(&line.meta, "adapter"),
            By::Model => text(&line.actual, "model"),
            By::Day => started.map(|s| s.chars().take(10).collect()),
        }
        .unwrap_or_else(|| "unknown".into());
        let group = groups.entry(key.clone()).or_insert_with(|| Group { key, ..Group::default() });
        let ok = ended_well(line, &dispatched);
        add(group, line, ok);
        add(&mut total, line, ok);
    }
    let mut groups: Vec<Group> = groups.into_values().map(finish).collect();
    groups.sort_by(|a, b| b.sessions.cmp(&a.sessions).then(a.key.cmp(&b.key)));
    let report = Report {
        record,
        since: args.since,
        by: match args.by {
            By::Agent => "agent",
            By::Model => "model",
            By::Adapter => "adapter",
            By::Day => "day",
        },
        groups,
        total: finish(total),
        skipped_lines: skipped,
    };
    if args.json {
        crate::cli::print_json(&report)?;
    } else {
        print_table(&report)?;
    }
    Ok(code::OK)
}

fn text(map: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(String::from)
}

/// How the sessions of dispatches really ended, by session id, from the
/// outcome store (when there is one): a dispatcher stops every session it
/// started, so their exit (`stopped`) says nothing about the task. A
/// worker ended well when its attempt was accepted; a verifier when it gave
/// a verdict.
fn dispatched_results(state: &StateRoot) -> HashMap<String, bool> {
    let path = Store::path_in(state.root());
    let Some(store) = path.exists().then(|| Store::open(&path).ok()).flatten() else {
        return HashMap::new();
    };
    let mut results = HashMap::new();
    for a in store.attempts(None, u32::MAX).unwrap_or_default() {
        results.insert(a.session.clone(), a.result == "accepted");
        if let Some(verifier) = &a.verifier {
            results.insert(verifier.clone(), a.verdict.is_some());
        }
    }
    results
}

/// Whether a session ended well: for a session of a dispatch, its attempt's
/// real result; otherwise its exit (`success`, or `stopped` by someone).
fn ended_well(line: &RecordLine, dispatched: &HashMap<String, bool>) -> bool {
    let session = text(&line.meta, "id");
    let of_dispatch = line.meta.contains_key("dispatch");
    match session.and_then(|id| dispatched.get(&id)).filter(|_| of_dispatch) {
        Some(ok) => *ok,
        None => {
            matches!(line.actual.get("exit").and_then(Value::as_str), Some("success" | "stopped"))
        }
    }
}

fn add(group: &mut Group, line: &RecordLine, ok: bool) {
    let number = |key: &str| line.actual.get(key).and_then(Value::as_u64);
    group.sessions += 1;
    if ok {
        group.ok += 1;
    } else {
        group.failed += 1;
    }
    if let Some(total) = number("total_tokens").or_else(|| {
        // Some agents show input and output but no total.
        Some(number("input_tokens")? + number("output_tokens")?)
    }) {
        group.tokens_known += 1;
        group.total_tokens += total;
        group.input_tokens += number("input_tokens").unwrap_or(0);
        group.output_tokens += number("output_tokens").unwrap_or(0);
    }
    group.duration_s += line.actual.get("duration_s").and_then(Value::as_f64).unwrap_or(0.0);
}

fn finish(mut group: Group) -> Group {
    if group.sessions > 0 {
        group.success_rate = (group.ok as f64 / group.sessions as f64 * 1000.0).round() / 1000.0;
        group.mean_duration_s = (group.duration_s / group.sessions as f64 * 10.0).round() / 10.0;
    }
    group.duration_s = (group.duration_s * 10.0).round() / 10.0;
    group
}

/// `2026-11-01`, an RFC 3339 time, or an age (`7d`, `12h`, `90m`).
fn parse_since(text: &str) -> Result<Timestamp, CliError> {
    let bad = || {
        CliError::usage(format!("--since {text:?}: not a date, a time or an age"))
            .hint("e.g. --since 2026-11-01, --since 2026-11-01T09:00:00Z or --since 7d")
    };
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    if text.parse::<jiff::civil::Date>().is_ok() {
        return format!("{text}T00:00:00Z").parse::<Timestamp>().map_err(|_| bad());
    }
    let age = match text.strip_suffix('d') {
        Some(days) => days.parse::<f64>().ok().map(|d| d * 86_400.0),
        None => crate::time::parse_duration(text).ok().map(|d| d.as_secs_f64()),
    }
    .filter(|s| s.is_finite() && *s >= 0.0)
    .ok_or_else(bad)?;
    let span = jiff::SignedDuration::try_from_secs_f64(age).map_err(|_| bad())?;
    Timestamp::now().checked_sub(span).map_err(|_| bad())
}

fn print_table(report: &Report) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if report.total.sessions == 0 {
        writeln!(
            out,
            "no sessions recorded{} in {}",
            match &report.since {
                Some(since) => format!(" since {since}"),
                None => String::new(),
            },
            report.record.display()
        )?;
        return Ok(());
    }
    let header = [
        report.by.to_uppercase(),
        "SESSIONS".into(),
        "OK".into(),
        "TOKENS".into(),
        "TIME".into(),
        "MEAN".into(),
    ];
    let row = |g: &Group| -> [String; 6] {
        let tokens = if g.tokens_known == 0 {
            "-".to_string()
        } else {
            format!("{} ({}/{})", g.total_tokens, g.tokens_known, g.sessions)
        };
        [
            g.key.clone(),
            g.sessions.to_string(),
            format!("{:.0}%", g.success_rate * 100.0),
            tokens,
            crate::time::human(g.duration_s),
            crate::time::human(g.mean_duration_s),
        ]
    };
    let mut rows: Vec<[String; 6]> = report.groups.iter().map(row).collect();
    if report.groups.len() > 1 {
        rows.push(row(&report.total));
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    if report.skipped_lines > 0 {
        writeln!(out, "({} unreadable lines skipped)", report.skipped_lines)?;
    }
    Ok(())
}
