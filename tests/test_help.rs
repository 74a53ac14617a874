//! Help that teaches: every command's `--help` is compared with its
//! snapshot in `tests/snapshots/help/`, has examples and lists its exit
//! codes; completions and man pages are generated from the same
//! definition.
//!
//! After changing help text, review and accept the new output with
//! `REINS_UPDATE_SNAPSHOTS=1 cargo nextest run -E 'test(help_matches)'`
//! and commit the changed snapshots.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::common::TestEnv;

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help")
}

/// The names listed under `Commands:` in a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// Every command path with its `--help` text: `[]` (reins itself), `["run"]`,
/// `["adapters", "list"]`, ... Found by walking the `Commands:` lists, and
/// checked against the pages `reins man --dir` writes, which walks the clap
/// definition itself: a command added to the CLI is covered without
/// listing it here.
fn every_help(env: &TestEnv) -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = env.reins(&args).ok().stdout;
        for sub in subcommands(&help) {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
        found.push((path, help));
    }
    found.sort();
    let walked: BTreeSet<String> = found.iter().map(|(path, _)| page_name(path)).collect();
    assert_eq!(walked, clap_commands(env), "the --help walk and the CLI definition disagree");
    found
}

/// The name of every visible command in the CLI definition, as
/// `reins man --dir` names its pages: `reins`, `reins-run`,
/// `reins-worktree-list`, ...
fn clap_commands(env: &TestEnv) -> BTreeSet<String> {
    let dir = env.path().join("all-man-pages");
    env.reins(&["man", "--dir", dir.to_str().unwrap()]).ok();
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .map(|name| name.strip_suffix(".1").expect("a man page").to_string())
        .collect()
}

/// `reins-worktree-list` for `["worktree", "list"]`.
fn page_name(path: &[String]) -> String {
    std::iter::once("reins").chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join("-")
}

/// `reins` and the command path, as typed.
fn command_line(path: &[String]) -> String {
    std::iter::once("reins").chain(path.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
}

fn snapshot_name(path: &[String]) -> String {
    page_name(path) + ".txt"
}

#[test]
fn help_matches_its_snapshot_for_every_command() {
    let env = TestEnv::new();
    let update = std::env::var_os("REINS_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let dir = snapshot_dir();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut problems = Vec::new();
    let mut expected_files = BTreeSet::new();
    let helps = every_help(&env);
    assert!(helps.len() > 20, "found only {} commands", helps.len());
    for (path, help) in &helps {
        let name = snapshot_name(path);
        expected_files.insert(name.clone());
        let file = dir.join(&name);
        match std::fs::read_to_string(&file) {
            _ if update => std::fs::write(&file, help).unwrap(),
            Ok(snapshot) if snapshot == *help => {}
            Ok(snapshot) => problems.push(format!(
                "`{} --help` changed:\n{}",
                command_line(path),
                diff(&snapshot, help)
            )),
            Err(_) => problems.push(format!(
                "`{} --help` has no snapshot (tests/snapshots/help/{name})",
                command_line(path)
            )),
        }
    }
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if !expected_files.contains(&name) {
            if update {
                std::fs::remove_file(entry.path()).unwrap();
            } else {
                problems.push(format!("tests/snapshots/help/{name} belongs to no command"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nIf the new help is what you meant, accept it with\n  \
         REINS_UPDATE_SNAPSHOTS=1 cargo nextest run -E 'test(help_matches)'\n\
         then review `git diff tests/snapshots/help` and commit it.",
        problems.join("\n\n")
    );
}

/// The lines of `new` that differ from `old`, marked - and +.
fn diff(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let mut out = Vec::new();
    for i in 0..old.len().max(new.len()) {
        match (old.get(i), new.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                if let Some(a) = a {
                    out.push(format!("  -{a}"));
                }
                if let Some(b) = b {
                    out.push(format!("  +{b}"));
                }
            }
        }
    }
    out.truncate(30);
    out.join("\n")
}

#[test]
fn every_command_help_has_examples_and_exit_codes() {
    let env = TestEnv::new();
    for (path, help) in every_help(&env) {
        let command = command_line(&path);
        assert!(help.contains("Exit codes:"), "`{command} --help` does not list its exit codes");
        if !path.is_empty() {
            assert!(
                help.contains("Examples:") || help.contains("Example:"),
                "`{command} --help` has no examples"
            );
        }
    }
}

#[test]
fn completions_know_every_command_for_each_shell() {
    let env = TestEnv::new();
    let commands = subcommands(&env.reins(&["--help"]).ok().stdout);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = env.reins(&["completions", shell]).ok().stdout;
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} completions lack `{command}`");
        }
        // `__hosts` is bash's name for `reins hosts`, not the hidden one.
        let hidden =
            script.match_indices("__host").any(|(at, m)| !script[at + m.len()..].starts_with('s'));
        assert!(!hidden, "{shell} completions offer the hidden host command");
    }
    let bad = env.reins(&["completions", "tcsh"]).code(2);
    assert!(bad.stderr.contains("possible values"), "{}", bad.stderr);
}

#[test]
fn bash_completion_loads_and_completes_subcommands() {
    if !crate::common::have_tool("bash") {
        return;
    }
    let env = TestEnv::new();
    let script = "source <(reins completions bash)\n\
                  COMP_WORDS=(reins a) COMP_CWORD=1 COMP_LINE='reins a' COMP_POINT=7\n\
                  _reins reins a reins\n\
                  printf '%s\\n' \"${COMPREPLY[@]}\"";
    let (code, output) =
        crate::common::run_merged(env.bash(&["-c", script]), std::time::Duration::from_secs(10));
    assert_eq!(code, Some(0), "{output}");
    let offered: Vec<&str> = output.lines().collect();
    assert!(offered.contains(&"adapters"), "{output}");
    assert!(offered.contains(&"approve"), "{output}");
}

#[test]
fn man_pages_come_from_the_cli_definition() {
    let env = TestEnv::new();
    let page = env.reins(&["man"]).ok().stdout;
    assert!(page.contains(".TH reins 1"), "{page}");
    assert!(page.contains("mock\\-agent"), "the subcommands are listed");
    let wait = env.reins(&["man", "wait"]).ok().stdout;
    assert!(wait.contains(".TH reins-wait 1"), "{wait}");
    assert!(wait.contains("Exit codes:"), "the page keeps the help's exit codes");
    let nested = env.reins(&["man", "adapters", "explain"]).ok().stdout;
    assert!(nested.contains(".TH reins-adapters-explain 1"), "{nested}");
    let alias = env.reins(&["man", "ls"]).ok().stdout;
    assert!(alias.contains(".TH reins-status 1"), "an alias names its command");

    let missing = env.reins(&["man", "nope"]).code(2);
    assert!(missing.stderr.contains("no command `reins nope`"), "{}", missing.stderr);

    let dir = env.path().join("man1");
    env.reins(&["man", "--dir", dir.to_str().unwrap()]).ok();
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for page in ["reins.1", "reins-run.1", "reins-adapters-list.1", "reins-completions.1"] {
        assert!(pages.iter().any(|p| p == page), "{page} not in {pages:?}");
    }
    let hidden = |p: &String| p.contains("host") && !p.starts_with("reins-hosts");
    assert!(!pages.iter().any(hidden), "the hidden host has no page: {pages:?}");
}
