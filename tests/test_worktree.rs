//! `run --worktree` and `reins worktree list|diff|merge|remove`: mock
//! sessions working in parallel on one repository, each on its own branch
//! (the tests commit in their worktrees as an agent would); merges that
//! go through and one that conflicts and changes nothing; removals that
//! are refused; leftovers in `gc`; a watcher's restart in the same
//! worktree; and the bad input `run --worktree` must refuse.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestEnv, have_tool};

/// A test environment whose work directory is a git repository on `main`
/// with one commit (`a.txt`), and whose git has an identity for the
/// commits `reins worktree merge` makes.
fn repo_env() -> Option<TestEnv> {
    if !have_tool("git") {
        return None;
    }
    let mut env = TestEnv::new();
    for (key, value) in [
        ("GIT_AUTHOR_NAME", "t"),
        ("GIT_AUTHOR_EMAIL", "t@t"),
        ("GIT_COMMITTER_NAME", "t"),
        ("GIT_COMMITTER_EMAIL", "t@t"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "commit.gpgsign"),
        ("GIT_CONFIG_VALUE_0", "false"),
    ] {
        env.set_env(key, Some(value));
    }
    git(&env.work, &["init", "-q", "-b", "main"]);
    std::fs::write(env.work.join("a.txt"), "one\n").unwrap();
    git(&env.work, &["add", "a.txt"]);
    git(&env.work, &["commit", "-q", "-m", "start"]);
    Some(env)
}

/// `git -C dir ARGS` (as a user or an agent would run it); its stdout.
#[track_caller]
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What an agent does: write a file and commit it on its branch.
fn commit(dir: &Path, file: &str, text: &str, message: &str) {
    std::fs::write(dir.join(file), text).unwrap();
    git(dir, &["add", file]);
    git(dir, &["commit", "-q", "-m", message]);
}

/// Everything a failed merge must leave as it was.
fn snapshot(repo: &Path) -> (String, String, String, bool) {
    let head = git(repo, &["rev-parse", "HEAD"]);
    let status = git(repo, &["status", "--porcelain", "--untracked-files=all"]);
    let a = std::fs::read_to_string(repo.join("a.txt")).unwrap();
    let merging = repo.join(".git/MERGE_HEAD").exists();
    (head, status, a, merging)
}

fn status_of(env: &TestEnv, id: &str) -> Value {
    let rows = env.reins(&["status", "--json"]).ok().json();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not in {rows}"))
}

fn branch_exists(repo: &Path, branch: &str) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["show-ref", "--verify", "--quiet", &format!("refs/heads/{branch}")])
        .status()
        .unwrap()
        .success()
}

#[test]
fn three_sessions_work_in_parallel_and_merge_or_refuse() {
    let Some(env) = repo_env() else { return };
    let repo = &env.work;
    // Three at once, as a script starting a fleet would.
    let children: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .map(|id| env.spawn(&["run", "mock", "--id", id, "--detach", "--worktree"]))
        .collect();
    let started: Vec<Value> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    let beside = env.path().join("work.reins-worktrees");
    let mut paths = Vec::new();
    for (started, id) in started.iter().zip(["w1", "w2", "w3"]) {
        let wt = &started["worktree"];
        let path = PathBuf::from(wt["path"].as_str().unwrap());
        assert_eq!(path, std::fs::canonicalize(&beside).unwrap().join(id), "beside the repository");
        assert_eq!(wt["branch"], format!("reins/{id}"));
        assert_eq!(wt["base_branch"], "main");
        assert_eq!(wt["base"], git(repo, &["rev-parse", "HEAD"]));
        assert!(path.join("a.txt").is_file(), "a checkout of the repository");
        paths.push(path);
    }
    for id in ["w1", "w2", "w3"] {
        env.wait_state(id, "ready");
        let row = status_of(&env, id);
        assert_eq!(row["scope"], started[0]["scope"], "one scope: the repository's");
        let wt = &row["worktree"];
        assert_eq!(
            PathBuf::from(row["cwd"].as_str().unwrap()),
            PathBuf::from(wt["path"].as_str().unwrap())
        );
        assert_eq!((wt["ahead"].as_u64(), wt["behind"].as_u64()), (Some(0), Some(0)));
        assert_eq!(wt["dirty"], false);
    }
    // The agents work: each commits on its own branch.
    commit(&paths[0], "one.txt", "new file\n", "w1: add one.txt");
    commit(&paths[1], "a.txt", "two\n", "w2: one becomes two");
    std::fs::write(paths[1].join("notes.txt"), "not committed\n").unwrap();
    commit(&paths[2], "a.txt", "three\n", "w3: one becomes three");
    let w2 = status_of(&env, "w2");
    assert_eq!(
        (w2["worktree"]["ahead"].as_u64(), w2["worktree"]["dirty"].as_bool()),
        (Some(1), Some(true))
    );
    let table = env.reins(&["status"]).ok().stdout;
    assert!(table.lines().next().unwrap().contains("BRANCH"), "{table}");
    assert!(table.contains("reins/w2 +1 *"), "{table}");
    assert!(table.contains("reins/w1 +1 "), "{table}");
    let list = env.reins(&["worktree", "list", "--json"]).ok().json();
    let ids: Vec<&str> =
        list.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{list}");
    assert!(list.as_array().unwrap().iter().all(|r| r["session"] == "live"), "{list}");
    let text = env.reins(&["worktree", "list"]).ok().stdout;
    assert!(text.starts_with("ID"), "{text}");

    // What w3 changed, three ways.
    let stat = env.reins(&["worktree", "diff", "--id", "w3", "--stat"]).ok().stdout;
    assert!(stat.contains("a.txt"), "{stat}");
    let diff = env.reins(&["worktree", "diff", "--id", "w3"]).ok().stdout;
    assert!(diff.contains("-one") && diff.contains("+three"), "{diff}");
    let json =
        env.reins(&["worktree", "diff", "--id", "w2", "--json", "--uncommitted"]).ok().json();
    assert_eq!((json["added"].as_u64(), json["removed"].as_u64()), (Some(1), Some(1)), "{json}");

    // A clean merge, while the session runs (said so).
    let merged = env.reins(&["worktree", "merge", "--id", "w1"]).ok();
    assert!(merged.stdout.contains("merged reins/w1 (1 commit) into main"), "{}", merged.stdout);
    assert!(merged.stderr.contains("still running"), "{}", merged.stderr);
    assert!(repo.join("one.txt").is_file());
    let parents = git(repo, &["log", "-1", "--format=%P"]);
    assert_eq!(parents.split_whitespace().count(), 2, "a merge commit");
    let merged = env.reins(&["worktree", "merge", "--id", "w2", "--json"]).ok();
    let merged_json = merged.json();
    assert_eq!(
        (merged_json["into"].as_str(), merged_json["commits"].as_u64()),
        (Some("main"), Some(1))
    );
    assert!(
        merged.stderr.contains("notes.txt"),
        "uncommitted work is left out, and said so: {}",
        merged.stderr
    );
    assert!(!repo.join("notes.txt").exists());
    assert_eq!(std::fs::read_to_string(repo.join("a.txt")).unwrap(), "two\n");

    // w3 changed the same line as w2: refused, and nothing moves.
    let before = snapshot(repo);
    let refused = env.reins(&["worktree", "merge", "--id", "w3"]).code(1);
    assert!(refused.stderr.contains("conflict in a.txt"), "{}", refused.stderr);
    assert!(refused.stderr.contains("nothing was changed"), "{}", refused.stderr);
    assert!(refused.stderr.contains("hint:"), "{}", refused.stderr);
    assert_eq!(snapshot(repo), before);
    let refused = env.reins(&["worktree", "merge", "--id", "w3", "--squash"]).code(1);
    assert!(refused.stderr.contains("conflict"), "{}", refused.stderr);
    assert_eq!(snapshot(repo), before);
    // So is a merge into a dirty main worktree.
    std::fs::write(repo.join("a.txt"), "mine\n").unwrap();
    let refused = env.reins(&["worktree", "merge", "--id", "w3"]).code(1);
    assert!(refused.stderr.contains("uncommitted changes (a.txt)"), "{}", refused.stderr);
    git(repo, &["checkout", "--", "a.txt"]);
    assert_eq!(snapshot(repo), before);
    // Merged: w1 is nothing ahead now.
    assert_eq!(status_of(&env, "w1")["worktree"]["ahead"], 0);

    // Removal: refused while running, refused while dirty, branch kept.
    let refused = env.reins(&["worktree", "remove", "--id", "w1"]).code(1);
    assert!(refused.stderr.contains("is running"), "{}", refused.stderr);
    assert!(paths[0].is_dir());
    for id in ["w1", "w2", "w3"] {
        env.reins(&["stop", "--id", id]).ok();
    }
    let refused = env.reins(&["worktree", "remove", "--id", "w2"]).code(1);
    assert!(refused.stderr.contains("uncommitted changes (notes.txt)"), "{}", refused.stderr);
    assert!(paths[1].join("notes.txt").is_file(), "nothing was removed");
    let removed = env.reins(&["worktree", "remove", "--id", "w1"]).ok().stdout;
    assert!(removed.contains("kept branch reins/w1"), "{removed}");
    assert!(!paths[0].exists());
    assert!(branch_exists(repo, "reins/w1"));
    // Deleting an unmerged branch is refused too, unless forced.
    let refused = env.reins(&["worktree", "remove", "--id", "w3", "--delete-branch"]).code(1);
    assert!(
        refused.stderr.contains("1 commit that the main worktree's HEAD lacks"),
        "{}",
        refused.stderr
    );
    assert!(paths[2].is_dir() && branch_exists(repo, "reins/w3"));
    let removed =
        env.reins(&["worktree", "remove", "--id", "w3", "--delete-branch", "--force"]).ok().stdout;
    assert!(removed.contains("deleted branch reins/w3"), "{removed}");
    assert!(!paths[2].exists() && !branch_exists(repo, "reins/w3"));

    // The leftover: listed by gc, kept by gc --worktrees (uncommitted work).
    let gc = env.reins(&["gc"]).ok().stdout;
    assert!(gc.contains("leftover worktree of session w2"), "{gc}");
    assert!(gc.contains("[uncommitted changes]"), "{gc}");
    let gc = env.reins(&["gc", "--worktrees", "--json"]).ok().json();
    let left = &gc["worktrees"][0];
    assert_eq!((left["id"].as_str(), left["removed"].as_bool()), (Some("w2"), Some(false)), "{gc}");
    assert!(left["kept"].as_str().unwrap().contains("uncommitted"), "{gc}");
    assert!(paths[1].join("notes.txt").is_file());
    // Once committed, gc --worktrees removes it; the branch stays.
    commit(&paths[1], "notes.txt", "committed\n", "w2: notes");
    let gc = env.reins(&["gc", "--worktrees"]).ok().stdout;
    assert!(gc.contains("removed the worktree of session w2"), "{gc}");
    assert!(!paths[1].exists() && branch_exists(repo, "reins/w2"));
    assert!(!beside.exists(), "the empty worktrees directory goes too");
    let none = env.reins(&["worktree", "list"]).ok().stdout;
    assert!(none.contains("No session worktrees"), "{none}");
}

#[test]
fn squash_makes_one_commit_and_the_agent_starts_where_run_did() {
    let Some(env) = repo_env() else { return };
    std::fs::create_dir_all(env.work.join("src")).unwrap();
    commit(&env.work, "src/lib.txt", "lib\n", "src");
    let src = env.work.join("src");
    let started = env.start("sq", &["--worktree", "feature/sq", "--cwd", src.to_str().unwrap()]);
    let path = PathBuf::from(started["worktree"]["path"].as_str().unwrap());
    assert_eq!(started["worktree"]["branch"], "feature/sq");
    let cwd = status_of(&env, "sq")["cwd"].as_str().unwrap().to_string();
    assert_eq!(PathBuf::from(cwd), path.join("src"), "the same place in the new tree");
    commit(&path, "b.txt", "b\n", "first");
    commit(&path, "c.txt", "c\n", "second");
    let head = git(&env.work, &["rev-parse", "HEAD"]);
    let out = env.reins(&["worktree", "merge", "--id", "sq", "--squash"]).ok().stdout;
    assert!(out.contains("squashed 2 commits of feature/sq into one commit on main"), "{out}");
    assert_eq!(git(&env.work, &["log", "-1", "--format=%P"]), head, "one parent: no merge commit");
    let message = git(&env.work, &["log", "-1", "--format=%B"]);
    assert!(message.contains("reins session sq") && message.contains("* second"), "{message}");
    assert!(env.work.join("b.txt").is_file() && env.work.join("c.txt").is_file());
    let again = env.reins(&["worktree", "merge", "--id", "sq"]).ok().stdout;
    assert!(
        !again.contains("nothing to merge"),
        "a squash leaves the branch's commits unmerged: {again}"
    );
}

#[test]
fn a_new_run_and_a_watchers_restart_reuse_the_worktree() {
    let Some(env) = repo_env() else { return };
    let first = env.start("re", &["--worktree", "--context", "task"]);
    let path = first["worktree"]["path"].as_str().unwrap().to_string();
    env.wait_event("re", Duration::from_secs(10), |e| e["type"] == "task_complete");
    // The watcher restarts a crashed agent from launch.json.
    let watcher = env.spawn(&[
        "watch",
        "--id",
        "re",
        "--json",
        "--on-exit",
        "leave",
        "--stall-after",
        "5s",
        "--max-restarts",
        "1",
        "--until-exit",
    ]);
    env.reins(&["send", "--id", "re", "--no-wait", "[[crash:7]]"]).ok();
    let mut restarted = None;
    crate::common::eventually(Duration::from_secs(20), "a restart", || {
        restarted = env.events("re").into_iter().find(|e| e["type"] == "restart");
        restarted.is_some()
    });
    let run = restarted.unwrap()["run"].as_str().unwrap().to_string();
    let mut started = None;
    crate::common::eventually(Duration::from_secs(20), "the new run", || {
        started = env
            .events("re")
            .into_iter()
            .find(|e| e["type"] == "started" && e["run"] == run.as_str());
        started.is_some()
    });
    let started = started.unwrap();
    assert_eq!(started["cwd"], path.as_str(), "the same worktree");
    assert_eq!(started["worktree"]["path"], path.as_str());
    env.reins(&["stop", "--id", "re"]).ok();
    wait_child(watcher, Duration::from_secs(20));
    // `run --worktree` with the same id starts there again, and says so.
    let again = env.reins(&["run", "mock", "--id", "re", "--detach", "--worktree"]).ok();
    assert_eq!(again.json()["worktree"]["path"], path.as_str());
    assert!(again.stderr.contains("reusing the worktree of session re"), "{}", again.stderr);
    let worktrees = git(&env.work, &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 2, "the repository and one: {worktrees}");
    // ...unless it asks for another branch.
    env.reins(&["stop", "--id", "re"]).ok();
    let refused =
        env.reins(&["run", "mock", "--id", "re", "--detach", "--worktree", "other"]).code(2);
    assert!(refused.stderr.contains("already has a worktree"), "{}", refused.stderr);
}

fn wait_child(mut child: std::process::Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("the watcher did not finish within {timeout:?}:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_input_is_refused_before_anything_starts() {
    let Some(env) = repo_env() else { return };
    let no_session = |env: &TestEnv| {
        let rows = env.reins(&["status", "--all", "--json"]).ok().json();
        assert_eq!(rows.as_array().unwrap().len(), 0, "nothing started: {rows}");
    };
    // Outside a git repository.
    let plain = env.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let out = env
        .reins(&["run", "mock", "--detach", "--worktree", "--cwd", plain.to_str().unwrap()])
        .code(2);
    assert!(out.stderr.contains("--worktree needs a git repository"), "{}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    // A branch that already exists.
    git(&env.work, &["branch", "taken"]);
    let out = env.reins(&["run", "mock", "--id", "b", "--detach", "--worktree", "taken"]).code(2);
    assert!(out.stderr.contains("branch taken already exists"), "{}", out.stderr);
    git(&env.work, &["branch", "reins/b"]);
    let out = env.reins(&["run", "mock", "--id", "b", "--detach", "--worktree"]).code(2);
    assert!(out.stderr.contains("branch reins/b already exists"), "{}", out.stderr);
    // Not a branch name, not a commit, --base without --worktree.
    let out = env.reins(&["run", "mock", "--detach", "--worktree", "a..b"]).code(2);
    assert!(out.stderr.contains("not a valid branch name"), "{}", out.stderr);
    let out = env.reins(&["run", "mock", "--detach", "--worktree", "--base", "nope"]).code(2);
    assert!(out.stderr.contains("--base nope: no such commit"), "{}", out.stderr);
    env.reins(&["run", "mock", "--detach", "--base", "main"]).code(2);
    // A worktree root that cannot be written: under a file (for root too)...
    let file = env.path().join("file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("wt");
    let out = env
        .reins(&[
            "run",
            "mock",
            "--detach",
            "--worktree",
            "--worktree-root",
            under_file.to_str().unwrap(),
        ])
        .code(2);
    assert!(out.stderr.contains("--worktree-root"), "{}", out.stderr);
    assert!(out.stderr.contains("cannot create the worktree directory"), "{}", out.stderr);
    // ...a read-only directory (root may write anywhere: then skipped)...
    let locked = env.path().join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), "").is_err() {
        let out = env
            .reins(&[
                "run",
                "mock",
                "--detach",
                "--worktree",
                "--worktree-root",
                locked.to_str().unwrap(),
            ])
            .code(2);
        assert!(out.stderr.contains("--worktree-root"), "{}", out.stderr);
    }
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // ...and the same through the environment; inside the repository, never.
    let mut env = env;
    env.set_env("REINS_WORKTREE_ROOT", Some(under_file.to_str().unwrap()));
    let out = env.reins(&["run", "mock", "--detach", "--worktree"]).code(2);
    assert!(out.stderr.contains("REINS_WORKTREE_ROOT"), "{}", out.stderr);
    env.set_env("REINS_WORKTREE_ROOT", None);
    let out =
        env.reins(&["run", "mock", "--detach", "--worktree", "--worktree-root", "inside"]).code(2);
    assert!(out.stderr.contains("inside the repository"), "{}", out.stderr);
    assert!(!env.work.join("inside").exists(), "nothing was created in the repository");
    no_session(&env);
    assert!(!env.path().join("work.reins-worktrees").exists(), "no worktree was made");

    // A dirty main tree is allowed, and said: its changes stay behind.
    std::fs::write(env.work.join("a.txt"), "uncommitted\n").unwrap();
    let out = env.reins(&["run", "mock", "--id", "d", "--detach", "--worktree"]).ok();
    assert!(out.stderr.contains("has uncommitted changes"), "{}", out.stderr);
    let path = PathBuf::from(out.json()["worktree"]["path"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(path.join("a.txt")).unwrap(), "one\n");
    // A configured root: DIR/<scope>/<id>.
    let root = env.path().join("trees");
    let out = env
        .reins(&[
            "run",
            "mock",
            "--id",
            "c",
            "--detach",
            "--worktree",
            "--worktree-root",
            root.to_str().unwrap(),
        ])
        .ok()
        .json();
    let path = PathBuf::from(out["worktree"]["path"].as_str().unwrap());
    assert_eq!(
        path,
        std::fs::canonicalize(&root).unwrap().join(out["scope"].as_str().unwrap()).join("c")
    );
    // Commands on a session without a worktree say so.
    env.start("plain", &[]);
    let out = env.reins(&["worktree", "diff", "--id", "plain"]).code(1);
    assert!(out.stderr.contains("session plain has no worktree"), "{}", out.stderr);
}
