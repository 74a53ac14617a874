//! The docs run: every command in a ```sh block of `guides/`, `recipes/`
//! and the README's tour is run, in order, against the mock agent, so the
//! docs cannot rot.
//!
//! Each file runs as one bash script in its own `TestEnv` (blocks in order,
//! shell variables carrying over, as a reader's shell would), in a git
//! repository with one commit, with the binary under test as `reins` on
//! PATH and `claude`, `codex` and `gemini` set up as user profiles that run
//! the mock agent: a guide can say `reins run codex` and still run here.
//! Any failing command fails the test, naming the file and line.
//!
//! A trailing comment marks the few lines that need something else:
//! - `# not run: WHY`: not run (e.g. it needs a real agent or a terminal).
//! - `# exits N`: must exit with N (e.g. 2 for a watch that escalates).
//! - a comment mentioning `Ctrl-C`: the line runs until interrupted; it
//!   is run for a second, then stopped, and must not have failed by then.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{TestEnv, have_tool, run_merged};

/// How long one file's commands may take in all.
const FILE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a Ctrl-C line runs before it is stopped.
const UNTIL_INTERRUPTED: &str = "1";
/// What the generated script prints when a command fails.
const FAILED: &str = "__REINS_DOCS_FAILED__";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How a command line of the docs is run.
#[derive(Debug, PartialEq)]
enum Mark {
    Run,
    NotRun(String),
    Exits(i32),
    UntilInterrupted,
}

/// One line of a ```sh block.
#[derive(Debug)]
struct Line {
    /// 1-based line number in its file.
    number: usize,
    text: String,
    mark: Mark,
}

/// The lines of every ```sh block in `text`, in order; with `after`, only
/// the blocks below the heading that starts with it (and above the next
/// heading of any level).
fn sh_lines(text: &str, after: Option<&str>) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut in_sh = false;
    let mut in_other = false;
    let mut wanted = after.is_none();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if !in_sh && !in_other && trimmed.starts_with('#') {
            if let Some(heading) = after {
                wanted = trimmed.starts_with(heading);
            }
            continue;
        }
        if let Some(info) = trimmed.strip_prefix("```") {
            match (in_sh, in_other) {
                (false, false) if info.trim() == "sh" => in_sh = true,
                (false, false) => in_other = true,
                _ => (in_sh, in_other) = (false, false),
            }
            continue;
        }
        if in_sh && wanted {
            lines.push(Line { number: i + 1, text: raw.to_string(), mark: mark_of(raw) });
        }
    }
    assert!(!in_sh && !in_other, "an unclosed ``` block");
    lines
}

/// The mark a line's trailing comment gives it.
fn mark_of(line: &str) -> Mark {
    let Some(comment) = trailing_comment(line) else { return Mark::Run };
    if let Some(why) = comment.strip_prefix("not run:") {
        assert!(!why.trim().is_empty(), "`# not run:` needs a reason: {line}");
        return Mark::NotRun(why.trim().to_string());
    }
    if let Some(rest) = comment.strip_prefix("exits ") {
        let code = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
        return Mark::Exits(code.parse().unwrap_or_else(|_| panic!("`# exits N`: {line}")));
    }
    if comment.contains("Ctrl-C") {
        return Mark::UntilInterrupted;
    }
    Mark::Run
}

/// Where a line's trailing `# comment` starts: the first `#` that follows
/// whitespace outside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return Some(i),
            _ => {}
        }
        prev = c;
    }
    None
}

/// The text of a line's trailing comment.
fn trailing_comment(line: &str) -> Option<&str> {
    comment_start(line).map(|i| line[i + 1..].trim())
}

/// The code of a line without its trailing comment.
fn code_of(line: &str) -> &str {
    comment_start(line).map_or(line, |i| &line[..i]).trim_end()
}

/// Single-quotes `s` for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script that runs `lines`, and for each of its lines the doc line it
/// came from.
fn script(lines: &[Line]) -> (String, Vec<Option<usize>>) {
    let mut out = String::new();
    let mut origin = Vec::new();
    let mut emit = |text: &str, from: Option<usize>| {
        out.push_str(text);
        out.push('\n');
        origin.push(from);
    };
    emit("set -E -o pipefail", None);
    emit(&format!("trap 'printf \"\\n{FAILED} %s %s\\n\" \"$LINENO\" \"$?\"; exit 99' ERR"), None);
    for line in lines {
        let code = code_of(&line.text);
        let text = match &line.mark {
            Mark::Run => line.text.clone(),
            Mark::NotRun(_) => ":".to_string(),
            Mark::Exits(n) => format!(
                "__rc=0; {{ {code} ; }} || __rc=$?; [ \"$__rc\" = {n} ] || {{ printf '\\n{FAILED} %s %s (expected {n})\\n' \"$LINENO\" \"$__rc\"; exit 99; }}"
            ),
            Mark::UntilInterrupted => format!(
                "__rc=0; timeout -s TERM {UNTIL_INTERRUPTED} bash -o pipefail -c {} || __rc=$?; case $__rc in 0 | 124) ;; *) printf '\\n{FAILED} %s %s (before it was interrupted)\\n' \"$LINENO\" \"$__rc\"; exit 99 ;; esac",
                quote(code)
            ),
        };
        emit(&text, Some(line.number));
    }
    (out, origin)
}

/// A TestEnv where the docs can run: a git repository with one commit,
/// real agent names running the mock agent, git able to commit.
fn docs_env() -> TestEnv {
    let mut env = TestEnv::new();
    for (key, value) in [
        ("GIT_AUTHOR_NAME", "Docs Test"),
        ("GIT_AUTHOR_EMAIL", "docs@example.invalid"),
        ("GIT_COMMITTER_NAME", "Docs Test"),
        ("GIT_COMMITTER_EMAIL", "docs@example.invalid"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ] {
        env.set_env(key, Some(value));
    }
    let mock = std::fs::read_to_string(repo().join("adapters/mock.toml")).unwrap();
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    for agent in ["claude", "codex", "gemini"] {
        let profile = mock.replacen("name = \"mock\"", &format!("name = \"{agent}\""), 1);
        assert_ne!(profile, mock, "adapters/mock.toml no longer says name = \"mock\"");
        std::fs::write(dir.join(format!("{agent}.toml")), profile).unwrap();
    }
    let setup = "git -c init.defaultBranch=main init -q && echo '# demo' > README.md \
                 && git add README.md && git commit -q -m 'first commit'";
    let (code, output) = run_merged(env.bash(&["-c", setup]), Duration::from_secs(20));
    assert_eq!(code, Some(0), "git setup failed: {output}");
    env
}

/// Runs the commands of `file` (relative to the repository) and fails,
/// naming the doc line, if one of them fails.
fn run_doc(file: &str, after: Option<&str>, skip: &[(&str, &str)]) {
    if !tools() {
        return;
    }
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    run_commands(file, &text, after, skip);
}

/// The docs use jq, git and tmux as their readers would.
fn tools() -> bool {
    have_tool("jq") && have_tool("tmux") && have_tool("git")
}

/// Runs the commands of the Markdown `text` (called `file` in messages).
fn run_commands(file: &str, text: &str, after: Option<&str>, skip: &[(&str, &str)]) {
    let mut lines = sh_lines(text, after);
    assert!(!lines.is_empty(), "{file}: no ```sh block to run");
    for line in &mut lines {
        if let Some((_, why)) = skip.iter().find(|(code, _)| code_of(&line.text) == *code) {
            line.mark = Mark::NotRun((*why).to_string());
        }
    }
    let (script, origin) = script(&lines);
    let env = docs_env();
    let path = env.path().join("docs.sh");
    std::fs::write(&path, &script).unwrap();
    let started = Instant::now();
    let (code, output) = run_merged(env.bash(&[path.to_str().unwrap()]), FILE_TIMEOUT);
    let elapsed = started.elapsed();
    let tail = |text: &str| {
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let Some(code) = code else {
        panic!("{file}: still running after {FILE_TIMEOUT:?}; output so far:\n{}", tail(&output));
    };
    if let Some(failure) = output.lines().rev().find(|l| l.starts_with(FAILED)) {
        let mut words = failure[FAILED.len()..].split_whitespace();
        let script_line: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let status = words.collect::<Vec<_>>().join(" ");
        let doc_line = origin.get(script_line.wrapping_sub(1)).copied().flatten();
        let mut report =
            format!("{file}:{} failed with exit status {status}\n", doc_line.unwrap_or(0));
        if let Some(n) = doc_line {
            let _ = writeln!(report, "    {}", text.lines().nth(n - 1).unwrap_or(""));
        }
        let _ = write!(report, "output (last 40 lines):\n{}", tail(&output));
        panic!("{report}");
    }
    assert_eq!(code, 0, "{file}: the script exited {code}:\n{}", tail(&output));
    eprintln!("{file}: {} command lines ran in {elapsed:.1?}", lines.len());
    if std::env::var_os("REINS_DOCS_SHOW").is_some() {
        eprintln!("{output}");
    }
}

#[test]
fn guide_getting_started_runs() {
    run_doc("guides/getting-started.md", None, &[]);
}

#[test]
fn agents_guide_basics_runs() {
    run_doc("guides/agents/01-basics.md", None, &[]);
}

#[test]
fn agents_guide_dispatch_runs() {
    run_doc("guides/agents/02-dispatch.md", None, &[]);
}

#[test]
fn agents_guide_chain_runs() {
    run_doc("guides/agents/03-chain.md", None, &[]);
}

#[test]
fn agents_guide_buddy_runs() {
    run_doc("guides/agents/04-buddy.md", None, &[]);
}

#[test]
fn agents_guide_monitoring_runs() {
    run_doc("guides/agents/05-monitoring.md", None, &[]);
}

#[test]
fn agents_guide_naming_runs() {
    run_doc("guides/agents/06-naming.md", None, &[]);
}

#[test]
fn agents_guide_mcp_runs() {
    run_doc("guides/agents/07-mcp.md", None, &[]);
}

#[test]
fn recipe_mcp_runs() {
    run_doc("recipes/08-mcp.md", None, &[]);
}

#[test]
fn recipe_fire_and_watch_runs() {
    run_doc("recipes/01-fire-and-watch.md", None, &[]);
}

#[test]
fn recipe_chain_of_three_runs() {
    run_doc("recipes/02-chain-of-three.md", None, &[]);
}

#[test]
fn recipe_buddy_runs() {
    run_doc("recipes/03-buddy.md", None, &[]);
}

#[test]
fn recipe_approvals_runs() {
    run_doc("recipes/04-approvals.md", None, &[]);
}

#[test]
fn recipe_fan_out_runs() {
    run_doc("recipes/05-fan-out.md", None, &[]);
}

#[test]
fn recipe_overnight_runs() {
    run_doc("recipes/06-overnight.md", None, &[]);
}

#[test]
fn recipe_plan_review_implement_runs() {
    run_doc("recipes/07-plan-review-implement.md", None, &[]);
}

/// The README's tour, without touching the README: its one line that
/// takes over the terminal is skipped here.
#[test]
fn readme_tour_runs() {
    let skip = [("reins run mock", "takes over the terminal (foreground mode)")];
    run_doc("README.md", Some("## A 60-second tour"), &skip);
}

/// Markdown files under `guides/` that are not docs for a reader, so have
/// no run_doc test: each must hold no ```sh block (it would never run).
const NOT_DOCS: &[(&str, &str)] = &[(
    "guides/buddy.md",
    "the brief template `reins buddy` sends its buddy agent ({{placeholders}} \
     filled in at run time); tests/test_buddy.rs covers it",
)];

/// A doc without a test above would never run; and a command block in any
/// other language would silently not be run.
#[test]
fn every_doc_is_run_and_every_command_block_is_sh() {
    let source = include_str!("test_docs.rs");
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::from("guides"), PathBuf::from("recipes")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(repo().join(&dir)).unwrap().flatten() {
            let path = dir.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "found only {files:?}");
    for (not_doc, _) in NOT_DOCS {
        assert!(files.iter().any(|f| f.to_str() == Some(*not_doc)), "{not_doc} is gone");
    }
    for file in files {
        let file = file.to_str().unwrap();
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        if NOT_DOCS.iter().any(|(not_doc, _)| *not_doc == file) {
            assert!(sh_lines(&text, None).is_empty(), "{file} is not run, so may hold no ```sh");
            continue;
        }
        assert!(source.contains(&format!("run_doc(\"{file}\"")), "{file} has no run_doc test here");
        for (i, line) in text.lines().enumerate() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                let info = info.trim();
                assert!(
                    matches!(info, "" | "sh" | "text" | "toml" | "json"),
                    "{file}:{}: ```{info} blocks are not run; use ```sh for commands",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn marks_are_read_from_trailing_comments_outside_quotes() {
    assert_eq!(mark_of("reins stop --id w1"), Mark::Run);
    assert_eq!(mark_of("reins watch --id w   # exits 2: escalated"), Mark::Exits(2));
    assert_eq!(mark_of("reins events --id w --follow   # until Ctrl-C"), Mark::UntilInterrupted);
    assert_eq!(
        mark_of("reins run claude   # not run: needs a real agent"),
        Mark::NotRun("needs a real agent".into())
    );
    assert_eq!(mark_of("reins send --id w 'fix # exits 2'"), Mark::Run);
    assert_eq!(code_of("reins watch --id w   # exits 2: escalated"), "reins watch --id w");
    assert_eq!(code_of("jq -r '.a # b'"), "jq -r '.a # b'");
}

/// The harness itself: a failing command fails the run and is named, an
/// expected exit code is held to, and a marked line is not run.
#[test]
fn a_failing_doc_command_is_named_by_file_and_line() {
    let doc = "# Demo\n\n```sh\nreins status\nreins stop --id nope   # exits 1\nfalse   # not run: shows the mark\nreins pane --id nope\n```\n";
    if !tools() {
        return;
    }
    let failed = std::panic::catch_unwind(|| run_commands("demo.md", doc, None, &[]));
    let message = *failed
        .expect_err("reins pane of a missing session must fail")
        .downcast::<String>()
        .unwrap();
    assert!(message.starts_with("demo.md:7 failed with exit status 1"), "{message}");
    assert!(message.contains("reins pane --id nope"), "{message}");
    assert!(message.contains("no session named nope"), "{message}");
    let wrong = "# Demo\n\n```sh\nreins status   # exits 3\n```\n";
    let failed = std::panic::catch_unwind(|| run_commands("wrong.md", wrong, None, &[]));
    let message = *failed.expect_err("a wrong exit code must fail").downcast::<String>().unwrap();
    assert!(message.starts_with("wrong.md:4 failed with exit status 0 (expected 3)"), "{message}");
}

/// `scripts/demo` (with the binary under test instead of a release build)
/// twice in a row in one state directory: the second run must not follow
/// the first run's events, and both end with the line that puts reins on
/// PATH.
#[test]
fn the_demo_runs_twice_in_a_row() {
    let env = TestEnv::new();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo");
    for round in 1..=2 {
        let mut cmd = env.bash(&[demo.to_str().unwrap()]);
        cmd.env("REINS", crate::common::reins_bin());
        let (code, output) = crate::common::run_merged(cmd, Duration::from_secs(60));
        assert_eq!(code, Some(0), "round {round}:\n{output}");
        assert!(output.contains("\"status\":\"reached\""), "round {round}:\n{output}");
        assert!(output.contains("write a haiku)"), "round {round}:\n{output}");
        assert!(output.contains("\"status\":\"stopped\""), "round {round}:\n{output}");
        assert!(output.contains("export PATH=\""), "round {round}:\n{output}");
    }
    let left = env.reins(&["status", "--all", "--json"]).ok().json();
    assert_eq!(left, serde_json::json!([]), "the demo left a session running");
}
