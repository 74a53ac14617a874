//! Durations from people are bounded where they are read: a flag, a config
//! file or a chain file asking for more than 30 days is refused as a usage
//! error, never taken through to a deadline that overflows (`wait
//! --timeout 3000000000000000h` and `doctor --timeout 1e300` panicked).

use crate::common::TestEnv;

const HUGE: &str = "3000000000000000h";
const BOUND: &str = "longest duration reins takes, 720h (30 days)";

#[track_caller]
fn refused(env: &TestEnv, args: &[&str]) {
    let out = env.reins(args).code(2);
    assert!(out.stderr.contains(BOUND), "{args:?}: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
}

#[test]
fn a_duration_flag_beyond_thirty_days_is_a_usage_error_not_a_panic() {
    let env = TestEnv::new();
    env.start("d1", &[]);
    let to = format!("--timeout={HUGE}");
    refused(&env, &["wait", "--id", "d1", "--until", "task_complete", &to]);
    refused(&env, &["wait", "--id", "d1", "--until", &format!("idle:{HUGE}")]);
    refused(&env, &["send", "--id", "d1", "--wait-for-idle", &to, "hi"]);
    refused(&env, &["stop", "--id", "d1", &to]);
    refused(&env, &["run", "mock", "--id", "d2", "--detach", &to]);
    refused(&env, &["run", "mock", "--id", "d2", "--detach", &format!("--max-runtime={HUGE}")]);
    refused(&env, &["dispatch", "--agent", "mock", "--message", "x", &to]);
    refused(
        &env,
        &["dispatch", "--agent", "mock", "--message", "x", &format!("--done=quiet:{HUGE}")],
    );
    refused(&env, &["doctor", "--timeout", "1e300"]);
    refused(&env, &["doctor", "--timeout", "inf"]);
    refused(&env, &["gc", &format!("--idle={HUGE}")]);
    // The bound itself is fine, and a session is still there to prove
    // nothing above touched it.
    env.reins(&["wait", "--id", "d1", "--until", "ready", "--timeout", "720h"]).ok();
    env.reins(&["doctor", "mock", "--timeout", "1e1"]).ok();
}

#[test]
fn a_duration_in_a_config_or_chain_file_beyond_thirty_days_is_refused() {
    let env = TestEnv::new();
    env.write_config(&format!("[agents.w]\nagent = \"mock\"\ncooldown = \"{HUGE}\"\n"));
    let out = env.reins(&["agents"]).code(2);
    assert!(out.stderr.contains("cooldown") && out.stderr.contains(BOUND), "{}", out.stderr);

    env.write_config("[agents.w]\nagent = \"mock\"\n");
    for (table, key) in [("chain", "timeout"), ("step", "timeout")] {
        let timeout = format!("{key} = \"{HUGE}\"\n");
        let (chain, step) =
            if table == "chain" { (timeout, String::new()) } else { (String::new(), timeout) };
        let text = format!(
            "[chain]\nname = \"c\"\n{chain}\n[[step]]\nname = \"s\"\nagent = \"w\"\nbrief = \"b\"\n{step}"
        );
        std::fs::write(env.work.join("c.toml"), text).unwrap();
        let out = env.reins(&["chain", "run", "c.toml", "--check"]).code(2);
        assert!(out.stderr.contains("c.toml:") && out.stderr.contains(BOUND), "{}", out.stderr);
    }
}
