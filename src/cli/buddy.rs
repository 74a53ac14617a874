//! `reins buddy`: start a second agent that looks after a worker session.
//!
//! A buddy is an ordinary session (started through `run`'s code) whose
//! first message is a brief: how to look at the worker with `reins
//! status/pane/events`, when to nudge it with `reins send`, how to report
//! to the pane that started the worker or to a done file, and when to stop
//! itself. The brief is `guides/buddy.md`, built into the binary, or the
//! user's `--brief FILE`; `{{name}}` placeholders are filled in from the
//! worker's registry entry. The buddy's registry entry records `buddy_of`,
//! which is how `status` links the two.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cli::run::{self, Outcome};
use crate::control::lookup;
use crate::control::start::{Mode, Start};
use crate::error::{CliError, CliResult, code};
use crate::ids;
use crate::store::paths::StateRoot;
use crate::store::registry::SessionRecord;
use crate::store::{lock, scope};
use crate::time;

/// The built-in brief.
const TEMPLATE: &str = include_str!("../../guides/buddy.md");

/// The placeholders a brief may use, in the order `placeholders` fills them.
const NAMES: [&str; 13] = [
    "worker",
    "worker_agent",
    "worker_cwd",
    "worker_description",
    "buddy",
    "every",
    "nudge_after",
    "spawner_pane",
    "tmux",
    "report",
    "done_file",
    "reins",
    "started_at",
];

/// Start a buddy: a second agent that watches a worker session, nudges it
/// when it stalls, and reports when it is done.
///
/// The buddy runs AGENT (default claude) in the worker's directory and gets
/// a brief as its first message: the exact reins commands to look at the
/// worker (status, pane, events), when to nudge it (no progress for
/// --nudge-after; never while it is ready, blocked or done), how to report
/// (tmux send-keys to the pane that started the worker, when there is one,
/// and a done file), and when to stop itself. `--print-brief` shows it.
///
/// `--brief FILE` replaces the built-in brief; these placeholders are filled
/// in either way: {{worker}} {{worker_agent}} {{worker_cwd}}
/// {{worker_description}} {{buddy}} {{every}} {{nudge_after}}
/// {{spawner_pane}} {{tmux}} {{report}} {{done_file}} {{reins}}
/// {{started_at}}.
///
/// `reins status` lists the buddy under its worker; in `--json` the buddy
/// has `buddy_of` and the worker `buddies`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins run codex --id impl-7 --tmux --context 'implement issue 7'
  reins buddy --for impl-7 --tmux                 claude looks after impl-7
  reins buddy --for impl-7 --every 10m --detach   look less often, headless
  reins buddy --for impl-7 --print-brief > b.md   start from the built-in brief
  reins buddy --for impl-7 --brief b.md --agent codex --detach

Exit codes: 0 the buddy is up (--detach, --tmux) or the brief was printed; in
this terminal, the buddy agent's own exit status. 1 the worker is not running,
the buddy's id is taken, --brief cannot be read or --done-file exists; 2 bad
input; 124 the buddy did not come up within 10s.")]
pub(crate) struct Args {
    /// The worker session to look after (it must be running).
    #[arg(long = "for", value_name = "ID")]
    worker: String,
    /// The buddy's agent: a profile or a program, as for `run`.
    #[arg(long, value_name = "AGENT", default_value = "claude")]
    agent: String,
    /// The buddy's session id (default: WORKER-buddy).
    #[arg(long)]
    id: Option<String>,
    /// How often the buddy looks at the worker.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::time::parse_duration)]
    every: Duration,
    /// How long without progress before the buddy nudges (default: twice --every).
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    nudge_after: Option<Duration>,
    /// Use this brief instead of the built-in one (same placeholders).
    #[arg(long, value_name = "FILE")]
    brief: Option<PathBuf>,
    /// Where the buddy writes its final report (default: `done` in the
    /// buddy's session directory; it must not exist yet).
    #[arg(long, value_name = "PATH")]
    done_file: Option<PathBuf>,
    /// Print the brief the buddy would get, and start nothing.
    #[arg(long)]
    print_brief: bool,
    /// Run headless and print the session as JSON once it is up.
    #[arg(long, conflicts_with = "tmux")]
    detach: bool,
    /// Run in a new tmux window (named NAME, default the id).
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    tmux: Option<String>,
    /// Arguments for the buddy's agent.
    #[arg(last = true, value_name = "AGENT ARGS")]
    agent_args: Vec<String>,
}

pub(crate) fn run(args: Args) -> CliResult {
    ids::validate(&args.worker)?;
    let buddy = args.id.clone().unwrap_or_else(|| format!("{}-buddy", args.worker));
    ids::validate(&buddy)?;
    if buddy == args.worker {
        return Err(CliError::usage("a session cannot be its own buddy")
            .hint("leave out --id (the default is WORKER-buddy) or pick another"));
    }
    let state = StateRoot::from_env()?;
    let worker = find_worker(&state, &args.worker)?;
    let buddy_dir = state.session(&scope::scope_of(&worker.cwd).name, &buddy);
    let done_file = match &args.done_file {
        Some(path) => absolute(path)?,
        None => buddy_dir.dir.join("done"),
    };
    let template = match &args.brief {
        Some(path) => std::fs::read_to_string(path).map_err(|err| {
            CliError::failure(format!("cannot read --brief {}: {err}", path.display()))
                .hint("give a text file; `reins buddy --for ID --print-brief` prints the default")
        })?,
        None => TEMPLATE.to_string(),
    };
    if args.every.is_zero() {
        return Err(CliError::usage("--every must be more than zero").hint("e.g. --every 5m"));
    }
    let nudge_after = args.nudge_after.unwrap_or(args.every * 2);
    let values = placeholders(&Fill {
        worker: &worker,
        buddy: &buddy,
        every: args.every,
        nudge_after,
        done_file: &done_file,
    })?;
    let (brief, unknown) = fill(&template, &values);
    for unknown in unknown {
        eprintln!(
            "reins: warning: the brief has an unknown placeholder {{{{{unknown}}}}}; left as is"
        );
    }
    if args.print_brief {
        print!("{brief}");
        return Ok(code::OK);
    }
    // Only starting one needs the id free; printing the brief does not.
    if lock::host_alive(&buddy_dir.host_lock()) {
        return Err(CliError::failure(format!("session {buddy} is already running"))
            .hint(format!("use another --id, or stop it first: reins stop --id {buddy}")));
    }
    prepare_done_file(&done_file, args.done_file.is_some())?;

    let mut start = Start::new(args.agent.clone());
    start.id = Some(buddy.clone());
    start.cwd = Some(worker.cwd.clone());
    start.description = Some(format!("buddy of {}", worker.id));
    start.context = Some(brief);
    start.agent_args = args.agent_args.clone();
    start.buddy_of = Some(worker.id.clone());
    start.mode = match (&args.tmux, args.detach) {
        (_, true) => Mode::Detached,
        (Some(name), false) => Mode::Tmux { window: Some(name.clone()).filter(|n| !n.is_empty()) },
        (None, false) => Mode::Foreground,
    };
    match run::launch(start)? {
        Outcome::Ended(code) => Ok(code),
        Outcome::Started(started) => {
            let mut out = serde_json::to_value(&started).map_err(std::io::Error::from)?;
            if let Value::Object(map) = &mut out {
                map.insert("done_file".into(), Value::from(done_file.display().to_string()));
                map.insert("every".into(), Value::from(format_duration(args.every)));
                map.insert("nudge_after".into(), Value::from(format_duration(nudge_after)));
            }
            crate::cli::print_json(&out)?;
            Ok(code::OK)
        }
    }
}

/// The worker's registry entry; it must be running.
fn find_worker(state: &StateRoot, id: &str) -> Result<SessionRecord, CliError> {
    let with_context =
        |err: CliError| CliError { message: format!("--for {id}: {}", err.message), ..err };
    let view = lookup::find(state, id, None).map_err(with_context)?;
    let record = lookup::require_live(&view).map_err(with_context)?;
    Ok(record.clone())
}

/// Makes sure a done file the buddy writes means this buddy is done: the
/// default one (in the buddy's own session directory) left by an earlier
/// buddy of the same id is removed; a file the user named must not exist.
fn prepare_done_file(path: &Path, named: bool) -> Result<(), CliError> {
    if named {
        if path.exists() {
            return Err(CliError::failure(format!(
                "--done-file {} already exists",
                path.display()
            ))
            .hint("remove it, or name a new file: the buddy creates it when it is done"));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| {
                CliError::failure(format!("--done-file: cannot create {}: {err}", dir.display()))
            })?;
        }
        return Ok(());
    }
    crate::store::fsutil::remove_if_exists(path).map_err(|err| {
        CliError::failure(format!("cannot remove the old done file {}: {err}", path.display()))
    })?;
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path)
        .map_err(|err| CliError::failure(format!("cannot resolve {}: {err}", path.display())))
}

/// What the placeholders are made of.
struct Fill<'a> {
    worker: &'a SessionRecord,
    buddy: &'a str,
    every: Duration,
    nudge_after: Duration,
    done_file: &'a Path,
}

/// Every placeholder and its value.
fn placeholders(fill: &Fill<'_>) -> Result<Vec<(&'static str, String)>, CliError> {
    let worker = fill.worker;
    // The pane that started the worker; else the one running this command
    // (whoever asks for a buddy is usually who started the worker).
    let spawner_pane = worker
        .spawner_pane
        .clone()
        .or_else(|| std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty()));
    let tmux = match std::env::var("REINS_TMUX_SERVER").ok().filter(|s| !s.is_empty()) {
        Some(server) => format!("tmux -L {}", crate::tmux::shell_join(&[server])),
        None => "tmux".to_string(),
    };
    let done_file = crate::tmux::shell_join(&[fill.done_file.display().to_string()]);
    let example = format!("'buddy {}: done: SUMMARY'", fill.buddy);
    let write_done = format!("printf '%s\\n' {example} > {done_file}");
    let report = match &spawner_pane {
        Some(pane) => format!(
            "Send each report to the pane that started the worker; write a final one (done,\n\
             stuck, exited) to the done file too:\n\n    \
             {tmux} send-keys -t {pane} {example} Enter\n    {write_done}\n"
        ),
        None => format!(
            "No tmux pane was left to report to: write each report to the done file, and\n\
             stop after the first one:\n\n    {write_done}\n"
        ),
    };
    let values = vec![
        ("worker", worker.id.clone()),
        ("worker_agent", worker.agent.clone()),
        ("worker_cwd", crate::tmux::shell_join(&[worker.cwd.display().to_string()])),
        ("worker_description", worker.description.clone().unwrap_or_else(|| "(none given)".into())),
        ("buddy", fill.buddy.to_string()),
        ("every", format_duration(fill.every)),
        ("nudge_after", format_duration(fill.nudge_after)),
        ("spawner_pane", spawner_pane.unwrap_or_else(|| "(none)".into())),
        ("tmux", tmux),
        ("report", report),
        ("done_file", done_file),
        ("reins", reins_command()?),
        ("started_at", time::now_rfc3339()),
    ];
    debug_assert!(values.iter().map(|(name, _)| *name).eq(NAMES), "NAMES lists every placeholder");
    Ok(values)
}

/// How the buddy runs reins: `reins` when that is this binary on PATH,
/// else this binary's full path.
fn reins_command() -> Result<String, CliError> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|err| CliError::failure(format!("cannot find the reins binary: {err}")))?;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path_var)
        .map(|dir| dir.join("reins"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok());
    Ok(if on_path.as_deref() == Some(exe.as_path()) {
        "reins".to_string()
    } else {
        crate::tmux::shell_join(&[exe.display().to_string()])
    })
}

/// Replaces every `{{name}}` with its value, in one pass (a value is
/// never filled in again). Returns the text and the placeholder-looking
/// names it did not know (`{{typo}}`), which stay as they are.
fn fill(template: &str, values: &[(&str, String)]) -> (String, Vec<String>) {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut unknown: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let name = after.find("}}").map(|close| &after[..close]);
        match name.and_then(|n| values.iter().find(|(k, _)| *k == n)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &after[name.len() + 2..];
            }
            None => {
                if let Some(name) = name.filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) && !unknown.iter().any(|u| u == name)
                {
                    unknown.push(name.to_string());
                }
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, unknown)
}

/// A duration as `reins wait --timeout` takes it: `5m`, `90s`, `1h`, `250ms`.
fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_wait_takes_them() {
        for (d, text) in [
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(time::parse_duration(text).unwrap(), d);
        }
    }

    #[test]
    fn placeholders_are_filled_once_and_unknown_ones_kept() {
        let values = [("worker", "{{every}}".to_string()), ("every", "5m".to_string())];
        let (out, unknown) =
            fill("watch {{worker}} every {{every}}; {{wroker}} {{ x }} {{every", &values);
        assert_eq!(out, "watch {{every}} every 5m; {{wroker}} {{ x }} {{every");
        assert_eq!(unknown, ["wroker"]);
    }

    #[test]
    fn the_built_in_brief_uses_only_known_placeholders() {
        let values: Vec<(&str, String)> = NAMES.iter().map(|n| (*n, "X".to_string())).collect();
        let (out, unknown) = fill(TEMPLATE, &values);
        assert_eq!(unknown, Vec::<String>::new());
        assert!(!out.contains("{{"), "{out}");
    }
}
