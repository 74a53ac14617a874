//! The pinned codex app-server schema (`tests/fixtures/codex-app-server-schema/`,
//! which `src/transport/schema.rs` validates codex messages against) must be
//! what the installed codex prints: this regenerates it with
//! `codex app-server generate-json-schema` (offline, in an empty home),
//! prunes it with `scripts/prune-codex-schema` and fails with a summary of
//! every difference, so a codex upgrade that changes a message reins
//! exchanges is noticed here rather than in a live session.
//!
//! It needs codex (`scripts/install-agents`) and python3; without them it
//! says so and skips, except under `REINS_TEST_REQUIRE_TOOLS=1`, where that
//! fails.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::agents::agents_bin_dir;

/// The pinned, pruned schema, relative to the repository root.
const FIXTURE: &str = "tests/fixtures/codex-app-server-schema";

/// At most this many differences are listed; the rest are counted.
const MAX_LINES: usize = 60;

#[test]
fn pinned_codex_schema_matches_the_installed_codex() {
    let Some(codex) = installed_codex() else { return };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    // CODEX_HOME must not lie under TMPDIR (docs/real-agents.md), so both
    // get their own directory next to the empty HOME.
    let (home, codex_home, tmpdir) = (root.join("home"), root.join("codex-home"), root.join("tmp"));
    for dir in [&home, &codex_home, &tmpdir] {
        fs::create_dir_all(dir).unwrap();
    }
    let run = |cmd: &mut Command| -> Output {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", &home)
            .env("CODEX_HOME", &codex_home)
            .env("TMPDIR", &tmpdir)
            .env("LANG", "C.UTF-8")
            .current_dir(&root)
            .output()
            .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"))
    };

    let full = root.join("full");
    let out =
        run(Command::new(&codex).args(["app-server", "generate-json-schema", "--out"]).arg(&full));
    assert!(
        out.status.success(),
        "codex app-server generate-json-schema failed:\n{}",
        stderr(&out)
    );
    let version = run(Command::new(&codex).arg("--version"));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();

    let pruned = root.join("pruned");
    let out = run(Command::new("python3")
        .arg(repo.join("scripts/prune-codex-schema"))
        .arg(&full)
        .arg(&pruned));
    assert!(
        out.status.success(),
        "scripts/prune-codex-schema failed on {version}:\n{}",
        stderr(&out)
    );

    let differences = compare_dirs(&repo.join(FIXTURE), &pruned);
    assert!(
        differences.is_empty(),
        "the installed {version} prints a different app-server schema than the pinned \
         {FIXTURE}/ (- pinned, + installed):\n{}\n\nIf reins should follow this codex: update \
         src/transport/ for the change, then regenerate the fixture as its README.md says.",
        differences.join("\n"),
    );
}

/// The installed codex, or None after saying why the test is skipped.
fn installed_codex() -> Option<PathBuf> {
    let codex = agents_bin_dir().map(|bin| bin.join("codex"));
    let python =
        Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    let missing = match &codex {
        None => Some("codex is not installed (scripts/install-agents)"),
        Some(_) if !python => Some("python3 is not installed"),
        Some(_) => None,
    };
    if let Some(why) = missing {
        crate::common::skip(&format!("codex schema drift test: {why}"));
        return None;
    }
    codex
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every `.json` file under `dir`, as paths relative to it, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

/// One line per difference between the JSON files of `pinned` and
/// `installed`, capped at `MAX_LINES`; empty when they are the same bytes.
fn compare_dirs(pinned: &Path, installed: &Path) -> Vec<String> {
    let (old, new) = (json_files(pinned), json_files(installed));
    let mut lines = Vec::new();
    for file in old.iter().filter(|f| !new.contains(f)) {
        lines.push(format!("- {}: no longer produced", file.display()));
    }
    for file in new.iter().filter(|f| !old.contains(f)) {
        lines.push(format!("+ {}: new file", file.display()));
    }
    for file in old.iter().filter(|f| new.contains(f)) {
        let a = fs::read(pinned.join(file)).unwrap();
        let b = fs::read(installed.join(file)).unwrap();
        if a == b {
            continue;
        }
        let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes);
        match (parse(&a), parse(&b)) {
            (Ok(a), Ok(b)) if a == b => lines.push(format!(
                "~ {}: same JSON, different bytes (was it written by scripts/prune-codex-schema?)",
                file.display()
            )),
            (Ok(a), Ok(b)) => {
                let mut inner = Vec::new();
                diff_values("", &a, &b, &mut inner);
                lines.extend(inner.into_iter().map(|l| format!("{}: {l}", file.display())));
            }
            (Err(e), _) | (_, Err(e)) => lines.push(format!("~ {}: not JSON: {e}", file.display())),
        }
    }
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("... and {more} more"));
    }
    lines
}

/// Appends the differences between `old` and `new` at JSON pointer `path`:
/// added and removed keys, changed scalars, and for changed arrays the
/// titles (union variants) that came and went.
fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let at = format!("{path}/{}", escape(key));
                match b.get(key) {
                    None => out.push(format!("- {at} = {}", short(value))),
                    Some(other) => diff_values(&at, value, other, out),
                }
            }
            for (key, value) in b.iter().filter(|(key, _)| !a.contains_key(*key)) {
                out.push(format!("+ {path}/{} = {}", escape(key), short(value)));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}/{index}"), x, y, out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let titles = |items: &[Value]| -> Vec<String> {
                items
                    .iter()
                    .map(|v| v.get("title").map_or_else(|| short(v), Value::to_string))
                    .collect()
            };
            let (ta, tb) = (titles(a), titles(b));
            let mut line = format!("~ {path}: {} -> {} items", a.len(), b.len());
            for gone in ta.iter().filter(|t| !tb.contains(t)) {
                let _ = write!(line, "; - {gone}");
            }
            for came in tb.iter().filter(|t| !ta.contains(t)) {
                let _ = write!(line, "; + {came}");
            }
            out.push(line);
        }
        _ if old == new => {}
        _ => out.push(format!("~ {path}: {} -> {}", short(old), short(new))),
    }
}

/// `key` as a JSON pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `value` as JSON, cut to one readable line.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// A regression guard for the summary itself: it must name the changed
/// scalar, the union variant that went away and the new definition.
#[test]
fn drift_summary_names_what_changed() {
    let old = json!({"definitions": {"A": {"type": "string"}, "U": {"oneOf": [{"title": "X"}]}}});
    let new = json!({"definitions": {"A": {"type": "integer"}, "B": {}, "U": {"oneOf": []}}});
    let mut out = Vec::new();
    diff_values("", &old, &new, &mut out);
    assert_eq!(
        out,
        [
            "~ /definitions/A/type: \"string\" -> \"integer\"",
            "~ /definitions/U/oneOf: 1 -> 0 items; - \"X\"",
            "+ /definitions/B = {}",
        ]
    );
}
