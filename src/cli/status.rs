//! `reins status`: the sessions of this repository (or all), from their
//! files alone, so it answers in milliseconds however many sessions run and
//! whatever state their hosts are in.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::control::status::{self, Listing, SessionInfo, Which};
use crate::error::{CliResult, code};
use crate::store::paths::StateRoot;
use crate::style::{Paint, Stream};
use crate::time;
use crate::worktree::Standing;

/// List sessions: state, turn, idle time, where they run.
///
/// By default, the sessions of the repository you are in (worktrees
/// included); `--all` lists every repository's. Sessions whose host process
/// died show as `dead` until `reins gc` cleans them up.
///
/// Columns: ID, AGENT, STATE (starting, ready, busy, blocked{kind}, unknown,
/// dead), TURN (turns started), IDLE (time since the agent last printed),
/// AGE, PANE (tmux pane id), BRANCH (only when a session works in a git
/// worktree, `run --worktree`: its branch, +commits ahead of and -behind
/// its base, `*` for uncommitted changes), CWD, DESC.
///
/// A buddy (`reins buddy`) is listed under its worker as `└ ID`; where only
/// one of the two is listed, its ID reads `ID (buddy of W)` or `ID (buddy:
/// B)`. In `--json`, `buddy_of` and `buddies` link them.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins status\n  reins ls --all\n  reins status --id demo --json\n  reins status --json | jq -r '.[] | select(.state == \"ready\") | .id'\n  reins status --hosts all                every machine: this one and each [hosts.NAME]\n  reins status --hosts gpu,ci --json\n\nExit codes: 0 listed (an empty list too), 1 --id names no session (with --hosts: a host failed), 2 bad input, 3 a host could not be reached (its row says so; the others are listed)."
)]
pub(crate) struct Args {
    /// Show only this session (it may have exited).
    #[arg(long)]
    id: Option<String>,
    /// Sessions of every repository.
    #[arg(long, short)]
    all: bool,
    /// Sessions of the repository at DIR instead of the current one.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Sessions of several machines in one list, with a HOST column
    /// (`host_name` in JSON): `all` (this machine and every [hosts.NAME])
    /// or names, `local` for this machine (every repository's sessions).
    #[arg(long, value_name = "all|NAME,...", conflicts_with_all = ["host", "repo"])]
    hosts: Option<String>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    if let Some(hosts) = &args.hosts {
        return fleet(&args, &state, hosts);
    }
    let which = match &args.id {
        Some(id) => Which::Id { id, repo: args.repo.as_deref() },
        None => Which::Running { all: args.all, repo: args.repo.as_deref() },
    };
    let Listing { sessions: rows, hidden } = status::list(&state, which)?;
    if args.json {
        crate::cli::print_json(&rows)?;
    } else {
        print_table(&rows)?;
    }
    if hidden > 0 {
        eprintln!(
            "{hidden} more session{} in other repositories (reins status --all)",
            if hidden == 1 { "" } else { "s" }
        );
    }
    Ok(code::OK)
}

/// `--hosts`: every host's sessions (each asked at once), merged; a host
/// that fails is a row of its own that says why, and hides no other.
fn fleet(args: &Args, state: &StateRoot, hosts: &str) -> CliResult {
    let names: Vec<String> = if hosts == "all" {
        std::iter::once("local".to_string()).chain(crate::config::hosts()?.into_keys()).collect()
    } else {
        hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_string).collect()
    };
    if names.is_empty() {
        return Err(crate::error::CliError::usage("--hosts names no host")
            .hint("use --hosts all, or names separated by commas (local is this machine)"));
    }
    let mut remote_args: Vec<std::ffi::OsString> = vec!["status".into(), "--json".into()];
    match &args.id {
        Some(id) => remote_args.extend(["--id".into(), id.into()]),
        None => remote_args.push("--all".into()),
    }
    let conns = names
        .iter()
        .filter(|n| *n != "local")
        .map(|n| crate::remote::Ssh::new(crate::remote::Target::resolve(n)?, state))
        .collect::<Result<Vec<_>, _>>()?;
    let mut per_host: Vec<(String, Result<Vec<serde_json::Value>, crate::error::CliError>)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = conns
                .iter()
                .map(|c| s.spawn(|| (c.target.name.clone(), remote_rows(c, &remote_args))))
                .collect();
            handles.into_iter().map(|h| h.join().expect("a host's status panicked")).collect()
        });
    if names.iter().any(|n| n == "local") {
        let which = match &args.id {
            Some(id) => Which::Id { id, repo: None },
            None => Which::Running { all: true, repo: None },
        };
        let local = status::list(state, which).map(|l| {
            l.sessions.iter().map(|s| serde_json::to_value(s).unwrap_or_default()).collect()
        });
        per_host.insert(0, ("local".to_string(), local));
    }
    let mut rows = Vec::new();
    let (mut unreachable, mut failed) = (false, false);
    for (host, result) in per_host {
        match result {
            Ok(sessions) => {
                for mut row in sessions {
                    row["host_name"] = host.clone().into();
                    rows.push(row);
                }
            }
            Err(err) => {
                let lost = err.code == code::UNREACHABLE;
                unreachable |= lost;
                failed |= !lost;
                eprintln!("reins: {}", err.message);
                if let Some(hint) = &err.hint {
                    eprintln!("hint: {hint}");
                }
                rows.push(serde_json::json!({
                    "host_name": host,
                    "id": null,
                    "state": if lost { "unreachable" } else { "error" },
                    "error": err.message,
                    "hint": err.hint,
                }));
            }
        }
    }
    if args.json {
        crate::cli::print_json(&rows)?;
    } else {
        print_fleet_table(&rows)?;
    }
    Ok(if unreachable {
        code::UNREACHABLE
    } else if failed {
        code::FAILURE
    } else {
        code::OK
    })
}

/// One host's `status --json` rows, or why there are none.
fn remote_rows(
    ssh: &crate::remote::Ssh,
    args: &[std::ffi::OsString],
) -> Result<Vec<serde_json::Value>, crate::error::CliError> {
    let out = ssh.reins_output(args)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(text.trim()).map_err(|_| {
        crate::error::CliError::failure(format!(
            "host {}: {}",
            ssh.target.name,
            String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("reins: ")
        ))
    })?;
    match value {
        serde_json::Value::Array(rows) => Ok(rows),
        err => {
            let mut e = crate::error::CliError::failure(format!(
                "host {}: {}",
                ssh.target.name,
                err["error"].as_str().unwrap_or("status failed")
            ));
            e.hint = err["hint"].as_str().map(str::to_string);
            Err(e)
        }
    }
}

fn print_fleet_table(rows: &[serde_json::Value]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "No sessions on these hosts.")?;
        return Ok(());
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let secs = |v: &serde_json::Value| v.as_f64().map_or("-".into(), time::compact);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let state = match r["kind"].as_str() {
                Some(kind) => format!("{}{{{kind}}}", text(&r["state"])),
                None => text(&r["state"]),
            };
            let last = match r["error"].as_str() {
                Some(err) => err.to_string(),
                None => truncate(r["description"].as_str().unwrap_or(""), 30),
            };
            vec![
                text(&r["host_name"]),
                text(&r["id"]),
                text(&r["agent"]),
                state,
                text(&r["turn"]),
                secs(&r["idle_s"]),
                secs(&r["age_s"]),
                r["cwd"].as_str().map_or("-".into(), |c| short_path(Path::new(c), None, 28)),
                last,
            ]
        })
        .collect();
    let header = ["HOST", "ID", "AGENT", "STATE", "TURN", "IDLE", "AGE", "CWD", "DESC"];
    crate::cli::write_columns(&mut out, &header, &table)
}

/// The table's rows in order, each with its ID cell: a buddy goes right
/// under its worker when both are listed.
fn table_order(rows: &[SessionInfo]) -> Vec<(&SessionInfo, String)> {
    let listed = |scope: &str, id: &str| rows.iter().any(|r| r.scope == scope && r.id == id);
    let nested = |r: &SessionInfo| r.buddy_of.as_deref().is_some_and(|w| listed(&r.scope, w));
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().filter(|r| !nested(r)) {
        let unlisted: Vec<&str> =
            r.buddies.iter().map(String::as_str).filter(|b| !listed(&r.scope, b)).collect();
        let cell = match (&r.buddy_of, unlisted.is_empty()) {
            (Some(worker), _) => format!("{} (buddy of {worker})", r.id),
            (None, false) => format!("{} (buddy: {})", r.id, unlisted.join(", ")),
            (None, true) => r.id.clone(),
        };
        out.push((r, cell));
        for b in rows.iter().filter(|b| nested(b) && b.scope == r.scope) {
            if b.buddy_of.as_deref() == Some(r.id.as_str()) {
                out.push((b, format!("└ {}", b.id)));
            }
        }
    }
    out
}

fn print_table(rows: &[SessionInfo]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "No sessions. Start one with: reins run mock --detach")?;
        return Ok(());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let branches = rows.iter().any(|r| r.worktree.is_some());
    let table: Vec<Vec<String>> = table_order(rows)
        .into_iter()
        .map(|(r, id)| {
            let state = match &r.kind {
                Some(kind) => format!("{}{{{kind}}}", r.state),
                None => r.state.clone(),
            };
            let mut cells = vec![
                id,
                r.agent.clone().unwrap_or_else(|| "-".into()),
                state,
                r.turn.to_string(),
                r.idle_s.map_or("-".into(), time::compact),
                r.age_s.map_or("-".into(), time::compact),
                r.tmux.as_ref().map_or("-".into(), |t| t.pane.clone()),
                r.cwd.as_deref().map_or("-".into(), |c| short_path(c, home.as_deref(), 28)),
                truncate(r.description.as_deref().unwrap_or(""), 30),
            ];
            if branches {
                cells.insert(7, r.worktree.as_ref().map_or("-".into(), Standing::compact));
            }
            cells
        })
        .collect();
    const STATE_COLUMN: usize = 2;
    let mut header = vec!["ID", "AGENT", "STATE", "TURN", "IDLE", "AGE", "PANE", "CWD", "DESC"];
    if branches {
        header.insert(7, "BRANCH");
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for cells in &table {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Colour (on a terminal only) goes on after padding, so it cannot
    // change the columns' widths.
    let paint = Paint::new(Stream::Stdout);
    let line = |cells: &[&str], color: bool| {
        let mut s = String::new();
        for (i, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let padded = format!("{cell:<w$}  ");
                if color && i == STATE_COLUMN {
                    s.push_str(&paint.state(cell));
                    s.push_str(&padded[cell.len()..]);
                } else {
                    s.push_str(&padded);
                }
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header, false))?;
    for cells in &table {
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&refs, true))?;
    }
    Ok(())
}

pub(crate) fn short_path(path: &Path, home: Option<&Path>, max: usize) -> String {
    let text = match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if rest.as_os_str().is_empty() => "~".to_string(),
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    };
    let n = text.chars().count();
    if n <= max {
        text
    } else {
        let tail: String = text.chars().skip(n - (max - 1)).collect();
        format!("…{tail}")
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}
