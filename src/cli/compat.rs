//! harnex's command-line forms that clap cannot take as hidden aliases,
//! rewritten to reins' before parsing: `version` and `-v`, and `run
//! --watch PATH` / `--watch=PATH` (harnex's file hook, reins'
//! `--watch-file`). The other aliases are hidden clap arguments next to the
//! flags they stand for; docs/harnex.md lists them all.
//!
//! And `--cli NAME` on commands that name a session: which session that is.

use std::ffi::OsString;
use std::path::Path;

use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::CliError;
use crate::store::paths::StateRoot;

/// The command line with harnex's forms turned into reins'.
pub(crate) fn normalize(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.len() == 2 && (args[1] == "-v" || args[1] == "version") {
        args[1] = "--version".into();
    }
    if args.get(1).is_some_and(|a| a == "run") {
        let rest = args.split_off(2);
        args.extend(run_watch_path(rest));
    }
    args
}

/// `run`'s arguments with `--watch=PATH` and `--watch PATH` as
/// `--watch-file PATH`. `--watch PATH` is a path only where it cannot be
/// the agent: after the agent was named, and not a flag. Before the agent,
/// `--watch X` stays the bare `--watch` and X the agent.
fn run_watch_path(args: Vec<OsString>) -> Vec<OsString> {
    let takes_value = value_flags();
    let mut out = Vec::with_capacity(args.len());
    let mut agent_seen = false;
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str().map(str::to_string) else {
            agent_seen = true;
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(iter);
            break;
        }
        if let Some(path) = text.strip_prefix("--watch=") {
            out.push("--watch-file".into());
            out.push(path.into());
            continue;
        }
        if text == "--watch"
            && agent_seen
            && let Some(next) = iter.peek().and_then(|n| n.to_str())
            && !next.starts_with('-')
        {
            out.push("--watch-file".into());
            out.extend(iter.next());
            continue;
        }
        if text.starts_with('-') {
            let value_next = !text.contains('=') && takes_value.contains(&text);
            out.push(arg);
            if value_next
                && let Some(value) =
                    iter.next_if(|n| n.to_str().is_none_or(|n| !n.starts_with('-')))
            {
                out.push(value);
                // `run --tmux codex`: run takes that NAME as the agent.
                agent_seen |= text == "--tmux";
            }
            continue;
        }
        agent_seen = true;
        out.push(arg);
    }
    out
}

/// `run`'s flags that take a value (`--id`, `-n`, ...), from its definition.
fn value_flags() -> Vec<String> {
    let cli = super::command();
    let Some(run) = cli.find_subcommand("run") else { return Vec::new() };
    let mut flags = Vec::new();
    for arg in run.get_arguments().filter(|a| a.get_action().takes_values()) {
        if arg.is_positional() {
            continue;
        }
        flags.extend(
            arg.get_long_and_visible_aliases().into_iter().flatten().map(|l| format!("--{l}")),
        );
        flags.extend(arg.get_all_aliases().into_iter().flatten().map(|l| format!("--{l}")));
        flags.extend(arg.get_short().map(|s| format!("-{s}")));
    }
    flags
}

/// The session `--id` and harnex's `--cli` name: with an id, that session
/// (which must run that agent, if `--cli` says one); without, the one
/// running session of this repository that runs the agent.
pub(crate) fn find(
    state: &StateRoot,
    id: Option<&str>,
    cli: Option<&str>,
    repo: Option<&Path>,
) -> Result<SessionView, CliError> {
    let runs = |view: &SessionView, cli: &str| {
        view.record.as_ref().is_some_and(|r| r.agent == cli || r.adapter == cli)
    };
    match (id, cli) {
        (Some(id), None) => lookup::find(state, id, repo),
        (Some(id), Some(cli)) => {
            let view = lookup::find(state, id, repo)?;
            if view.liveness == Liveness::Live && !runs(&view, cli) {
                return Err(CliError::failure(format!("session {id} does not run {cli}"))
                    .hint("drop --cli, or check the agent with `status --id ID`"));
            }
            Ok(view)
        }
        (None, Some(cli)) => {
            let here = lookup::client_scope(repo)?;
            let mut found: Vec<SessionView> = state
                .list_sessions(Some(&here.name))
                .into_iter()
                .map(SessionView::read)
                .filter(|v| v.liveness == Liveness::Live && runs(v, cli))
                .collect();
            match found.len() {
                1 => Ok(found.remove(0)),
                0 => Err(CliError::failure(format!("no running {cli} session in this repository"))
                    .hint("`status` lists the sessions; name one with --id")),
                _ => {
                    let ids: Vec<&str> = found.iter().map(|v| v.paths.id.as_str()).collect();
                    Err(CliError::failure(format!(
                        "{} running {cli} sessions in this repository ({})",
                        ids.len(),
                        ids.join(", ")
                    ))
                    .hint("name one with --id"))
                }
            }
        }
        (None, None) => Err(CliError::usage("which session? give --id ID")),
    }
}

/// A harnex flag reins cannot honour, as a usage error saying why and what
/// to do instead.
pub(crate) fn unsupported(flag: &str, why: &str, instead: &str) -> CliError {
    CliError::usage(format!("{flag} is not supported: {why}")).hint(instead.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        let mut argv: Vec<OsString> = vec!["harnex".into(), "run".into()];
        argv.extend(args.iter().map(OsString::from));
        normalize(argv).into_iter().skip(2).map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn watch_with_a_path_is_the_file_hook_only_where_it_cannot_be_the_agent() {
        assert_eq!(run(&["codex", "--watch", "notes.md"]), ["codex", "--watch-file", "notes.md"]);
        assert_eq!(run(&["--watch=notes.md", "codex"]), ["--watch-file", "notes.md", "codex"]);
        assert_eq!(run(&["--watch", "codex"]), ["--watch", "codex"]);
        assert_eq!(
            run(&["codex", "--watch", "--preset", "impl"]),
            ["codex", "--watch", "--preset", "impl"]
        );
        assert_eq!(run(&["--id", "w1", "codex", "--watch"]), ["--id", "w1", "codex", "--watch"]);
        // A flag's value is not the agent.
        assert_eq!(run(&["--id", "w1", "--watch", "codex"]), ["--id", "w1", "--watch", "codex"]);
        assert_eq!(run(&["codex", "--", "--watch", "x"]), ["codex", "--", "--watch", "x"]);
    }

    #[test]
    fn version_forms() {
        let v = |a: &str| normalize(vec!["reins".into(), a.into()])[1].clone();
        assert_eq!(v("-v"), "--version");
        assert_eq!(v("version"), "--version");
        assert_eq!(v("status"), "status");
    }
}
