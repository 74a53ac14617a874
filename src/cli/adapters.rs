//! `reins adapters`: the agent profiles, and why a screen reads as it does.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::adapter::{self, Profile, ProfileSource, RuleReport, UsageWhen, read_usage};
use crate::control::lookup;
use crate::error::{CliError, CliResult, code};
use crate::ipc::{Client, InputReport, ScreenReply, StatusReply};
use crate::screen::ScreenText;
use crate::store::paths::StateRoot;

/// List, show and test adapter profiles (how reins reads each agent).
///
/// Profiles are TOML files: built into reins, or yours in
/// ~/.config/reins/adapters/NAME.toml (which replace a built-in of the
/// same name).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins adapters list
  reins adapters show claude > ~/.config/reins/adapters/claude.toml   (then edit it)
  reins adapters check
  reins adapters explain --id w1

Exit codes: 0 ok, 1 no such profile, a profile disagrees with its examples, or
a file or session cannot be read; 2 bad input.")]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List the profiles.
    #[command(
        after_help = "Examples:\n  reins adapters list\n  reins adapters list --json | jq -r '.[].name'\n\nExit codes: 0 listed, 1 a profile of yours cannot be read, 2 bad input."
    )]
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a profile's TOML.
    #[command(
        after_help = "Examples:\n  reins adapters show mock\n  reins adapters show claude > ~/.config/reins/adapters/claude.toml\n\nExit codes: 0 printed, 1 no such profile, 2 bad input."
    )]
    Show {
        /// Profile name.
        name: String,
    },
    /// Check that every rule of a profile (default: all profiles) matches
    /// the example screens it lists, and no others.
    #[command(
        after_help = "Examples:\n  reins adapters check\n  reins adapters check claude\n\nExit codes: 0 every rule agrees with its examples, 1 a profile disagrees (or\nthere is no such profile), 2 bad input."
    )]
    Check {
        /// Profile name.
        name: Option<String>,
    },
    /// Replay a recorded byte stream (what an agent wrote to its terminal)
    /// through the emulator and print the state the profile reads at given
    /// byte offsets, one JSON line each. For testing a profile against real
    /// recordings (`tests/fixtures/screens/`).
    #[command(
        after_help = "Examples:\n  reins adapters replay --adapter claude claude.bytes --at 1377 --at 3767\n  reins logs --id w1 --raw > w1.bytes && reins adapters replay --adapter mock w1.bytes\n\nExit codes: 0 replayed, 1 no such profile or the file cannot be read, 2 bad input."
    )]
    Replay {
        /// The profile.
        #[arg(long, value_name = "NAME")]
        adapter: String,
        /// The recorded bytes.
        #[arg(value_name = "FILE")]
        bytes: PathBuf,
        /// Byte offsets to classify at (default: the end).
        #[arg(long = "at", value_name = "OFFSET")]
        offsets: Vec<u64>,
        /// Screen size the recording was made at, COLSxROWS.
        #[arg(long, default_value = "120x40", value_parser = parse_size)]
        size: crate::store::registry::Size,
        /// Also print each screen's text.
        #[arg(long)]
        screens: bool,
    },
    /// Run a profile's rules on a screen and show which rule matched and why.
    ///
    /// The screen is a live session's (`--id`) or a text file (`--screen`,
    /// with `--adapter`), read by exactly the code that classifies live
    /// sessions.
    #[command(
        after_help = "Examples:\n  reins adapters explain --id demo\n  reins adapters explain --adapter mock --screen screen.txt\n  reins pane --id demo > screen.txt && reins adapters explain --adapter mock --screen screen.txt --json\n\nExit codes: 0 explained, 1 no such profile or session, or the screen cannot be\nread; 2 bad input."
    )]
    Explain {
        /// A live session whose current screen to explain.
        #[arg(long, conflicts_with = "screen")]
        id: Option<String>,
        /// A file holding a screen's text.
        #[arg(long, value_name = "FILE", requires = "adapter")]
        screen: Option<PathBuf>,
        /// The profile to use with --screen (default: the session's).
        #[arg(long, value_name = "NAME")]
        adapter: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Look for the session in the repository at DIR.
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
}

#[derive(Serialize)]
struct ListRow {
    name: String,
    summary: String,
    source: String,
    tested_versions: Vec<String>,
    rules: Vec<String>,
    outcomes: Vec<String>,
}

#[derive(Serialize)]
struct Explanation {
    adapter: String,
    state: String,
    rule: Option<String>,
    /// Whether a message would be typed now and why (a live session).
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<InputReport>,
    /// What the profile's `[input]` asks for before a message is typed.
    input_needs: Vec<String>,
    rules: Vec<RuleReport>,
    /// How the profile finds a turn's answer, and what it finds on this
    /// screen (after the last echo row).
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<AnswerExplained>,
}

#[derive(Debug, Serialize)]
struct AnswerExplained {
    rules: Vec<String>,
    #[serde(flatten)]
    found: crate::adapter::answer::AnswerReport,
}

pub(crate) fn run(args: Args) -> CliResult {
    match args.command {
        Sub::List { json } => list(json),
        Sub::Show { name } => {
            let profile = named(&name)?;
            print!("{}", profile.text);
            Ok(code::OK)
        }
        Sub::Check { name } => check(name.as_deref()),
        Sub::Replay { adapter, bytes, offsets, size, screens } => {
            replay(&adapter, &bytes, offsets, size, screens)
        }
        Sub::Explain { id, screen, adapter, json, repo } => {
            explain(id.as_deref(), screen, adapter.as_deref(), json, repo)
        }
    }
}

fn named(name: &str) -> Result<Profile, CliError> {
    adapter::find(name)?.ok_or_else(|| {
        CliError::failure(format!("no adapter profile named {name:?}"))
            .hint("`reins adapters list` shows the profiles")
    })
}

fn check(name: Option<&str>) -> CliResult {
    let profiles = match name {
        Some(name) => vec![named(name)?],
        None => adapter::list()?,
    };
    let mut failed = 0;
    for profile in &profiles {
        let problems = profile.check_examples();
        let examples: usize = profile.rules.iter().map(|r| r.examples.len()).sum();
        if problems.is_empty() {
            println!(
                "ok    {} ({} rules, {examples} example screens)",
                profile.name,
                profile.rules.len()
            );
        } else {
            failed += 1;
            println!("FAIL  {}", profile.name);
            for p in problems {
                println!("      {}", p.replace('\n', "\n      "));
            }
        }
    }
    if failed > 0 {
        return Err(CliError::failure(format!("{failed} profile(s) disagree with their examples")));
    }
    Ok(code::OK)
}

fn parse_size(s: &str) -> Result<crate::store::registry::Size, String> {
    let (cols, rows) = s.split_once('x').ok_or("use COLSxROWS, e.g. 120x40")?;
    Ok(crate::store::registry::Size {
        cols: cols.parse().map_err(|_| "COLS must be a number")?,
        rows: rows.parse().map_err(|_| "ROWS must be a number")?,
    })
}

fn replay(
    adapter: &str,
    path: &std::path::Path,
    mut offsets: Vec<u64>,
    size: crate::store::registry::Size,
    screens: bool,
) -> CliResult {
    let profile = named(adapter)?;
    let bytes = std::fs::read(path)
        .map_err(|err| CliError::failure(format!("cannot read {}: {err}", path.display())))?;
    if offsets.is_empty() {
        offsets.push(bytes.len() as u64);
    }
    offsets.sort_unstable();
    let mut screen = crate::screen::Screen::new(size, 0, false);
    let mut fed = 0usize;
    for offset in offsets {
        let end = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        if end > fed {
            screen.feed(&bytes[fed..end]);
            fed = end;
        }
        let text = screen.text();
        let verdict = profile.classify(&text);
        let matched: Vec<&str> =
            profile.rules.iter().filter(|r| r.matches(&text)).map(|r| r.name.as_str()).collect();
        let mut line = serde_json::json!({
            "offset": offset,
            "state": verdict.observed.to_string(),
            "rule": verdict.rule,
            "matched": matched,
            "in_sync_update": screen.in_sync_update(std::time::Duration::MAX),
        });
        for (key, when) in [("usage_turn_end", UsageWhen::TurnEnd), ("usage_exit", UsageWhen::Exit)]
        {
            if let Some((fields, _)) = read_usage(&profile.usage, when, &text) {
                line[key] = serde_json::to_value(fields).unwrap_or_default();
            }
        }
        if screens {
            line["screen"] = serde_json::Value::from(text.rows.join("\n"));
        }
        crate::cli::print_json(&line)?;
    }
    Ok(code::OK)
}

fn list(json: bool) -> CliResult {
    let rows: Vec<ListRow> = adapter::list()?
        .into_iter()
        .map(|p| ListRow {
            source: match &p.source {
                ProfileSource::Builtin => "builtin".into(),
                ProfileSource::User(path) => path.display().to_string(),
            },
            rules: p.rules.iter().map(|r| r.name.clone()).collect(),
            outcomes: p.outcomes.iter().map(|o| o.name.clone()).collect(),
            name: p.name,
            summary: p.summary,
            tested_versions: p.tested_versions,
        })
        .collect();
    if json {
        crate::cli::print_json(&rows)?;
        return Ok(code::OK);
    }
    let mut out = std::io::stdout().lock();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4);
    for r in rows {
        let source = if r.source == "builtin" { String::new() } else { format!(" [{}]", r.source) };
        writeln!(out, "{:<width$}  {}{source}", r.name, r.summary)?;
    }
    Ok(code::OK)
}

/// What a profile's `[input]` asks for before a message is typed, one
/// item per piece of evidence.
fn input_needs(profile: &Profile) -> Vec<String> {
    let input = &profile.input;
    let mut needs: Vec<String> = vec!["the screen reads ready".into()];
    needs.extend(input.modes.iter().map(|m| format!("{} on", m.describe())));
    if input.ready_after_start_ms > 0 {
        needs.push(format!(
            "for the first message, ready for {} ms after start",
            input.ready_after_start_ms
        ));
    }
    if needs.len() > 1 {
        needs.push(format!("at most {} ms of waiting", input.wait_max_ms));
    }
    needs
}

fn explain(
    id: Option<&str>,
    screen_file: Option<PathBuf>,
    adapter: Option<&str>,
    json: bool,
    repo: Option<PathBuf>,
) -> CliResult {
    let mut input = None;
    let (profile, screen) = match (id, screen_file) {
        (Some(id), _) => {
            let state = StateRoot::from_env()?;
            let view = lookup::find(&state, id, repo.as_deref())?;
            let record = lookup::require_live(&view)?;
            let profile = named(adapter.unwrap_or(&record.adapter))?;
            let client = Client::new(&record.socket, Duration::from_secs(3));
            let (reply, status) = crate::cli::runtime().block_on(async {
                let screen = client.get::<ScreenReply>("/v1/screen").await;
                (screen, client.get::<StatusReply>("/v1/status").await.ok())
            });
            let reply = reply.map_err(|err| {
                CliError::failure(format!("cannot read the screen of {id}: {err}"))
            })?;
            input = status.and_then(|s| s.input);
            (profile, reply.into_text())
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(&file).map_err(|err| {
                CliError::failure(format!("cannot read {}: {err}", file.display()))
            })?;
            (named(adapter.unwrap_or("generic"))?, ScreenText::from_text(&text))
        }
        (None, None) => {
            return Err(CliError::usage("explain needs --id ID or --screen FILE --adapter NAME"));
        }
    };
    let verdict = profile.classify(&screen);
    let explanation = Explanation {
        adapter: profile.name.clone(),
        state: verdict.observed.to_string(),
        rule: verdict.rule,
        input,
        input_needs: input_needs(&profile),
        rules: profile.explain(&screen),
        answer: profile.answer.as_ref().map(|spec| AnswerExplained {
            rules: spec.summary.clone(),
            found: spec.explain(&screen.rows, None),
        }),
    };
    if json {
        crate::cli::print_json(&explanation)?;
        return Ok(code::OK);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} ({})",
        explanation.adapter,
        explanation.state,
        explanation.rule.as_deref().map_or("no rule matched".into(), |r| format!("rule {r}"))
    )?;
    match &explanation.input {
        Some(input) if input.takes_input => writeln!(out, "input: takes input now: {}", input.why)?,
        Some(input) => writeln!(out, "input: a message would wait: {}", input.why)?,
        None => {}
    }
    writeln!(out, "input needs: {}", explanation.input_needs.join("; "))?;
    for r in &explanation.rules {
        writeln!(out, "\n{} rule {} → {}", if r.matched { "✓" } else { "✗" }, r.rule, r.state)?;
        for check in &r.checks {
            writeln!(out, "    {check}")?;
        }
        writeln!(out, "    region:")?;
        for line in &r.region {
            writeln!(out, "    │ {line}")?;
        }
    }
    match &explanation.answer {
        Some(a) => {
            writeln!(
                out,
                "\nanswer (the [answer] rules: a turn's answer is the last block after the echoed message):"
            )?;
            for rule in &a.rules {
                writeln!(out, "    {rule}")?;
            }
            match (&a.found.answer, a.found.rows) {
                (Some(text), Some((first, last))) => {
                    writeln!(out, "    on this screen, rows {}-{}:", first + 1, last + 1)?;
                    for line in text.lines() {
                        writeln!(out, "    │ {line}")?;
                    }
                }
                _ => writeln!(out, "    on this screen: no answer")?,
            }
        }
        None => writeln!(out, "\nanswer: this profile has no [answer] rules")?,
    }
    Ok(code::OK)
}
