//! `reins top` in a real tmux pane of the test's private server: start it,
//! read its screen, wait for what it shows, press keys.

use std::time::{Duration, Instant};

use crate::common::{TestEnv, reins_bin};

/// Runs `reins ARGS` (after `extra_env`) in a new tmux session `top` of
/// `cols`x`rows`; when it exits the pane says `top exited CODE`.
pub fn start(env: &TestEnv, cols: u16, rows: u16, extra_env: &str, args: &str) {
    let command =
        format!("{extra_env} {} {args}; echo \"top exited $?\"; sleep 60", reins_bin().display());
    let (cols, rows) = (cols.to_string(), rows.to_string());
    let work = env.work.to_str().unwrap();
    let out = env.tmux(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        &cols,
        "-y",
        &rows,
        "-c",
        work,
        &command,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The pane's text now.
pub fn screen(env: &TestEnv) -> String {
    String::from_utf8_lossy(&env.tmux(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
}

/// Waits until the pane shows what `pred` looks for; fails with the last
/// screen after `timeout`.
#[track_caller]
pub fn shows(env: &TestEnv, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) {
    let mut last = String::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        last = screen(env);
        if pred(&last) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the dashboard never showed {what}:\n{last}");
}

/// Presses `keys` (tmux key names) one after another.
pub fn keys(env: &TestEnv, keys: &[&str]) {
    for k in keys {
        env.tmux(&["send-keys", "-t", "top", k]);
        std::thread::sleep(Duration::from_millis(60));
    }
}
