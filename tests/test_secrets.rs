//! No output of reins contains a secret the user handed to the agent.

use std::time::Duration;

use crate::common::{TestEnv, eventually};

#[test]
fn secrets_reach_the_agent_but_no_reins_output() {
    let mut env = TestEnv::new();
    env.set_env("OPENAI_API_KEY", Some("sk-env-SECRET-1"));
    let script = r#"[ "$OPENAI_API_KEY" = sk-env-SECRET-1 ] && echo key-present; sleep 60"#;
    let run = env
        .reins(&[
            "run",
            "sh",
            "--id",
            "sec",
            "--detach",
            "--",
            "-c",
            script,
            "x",
            "--api-key",
            "sk-arg-SECRET-2",
        ])
        .ok();
    let dir = env.session_dir("sec");
    eventually(Duration::from_secs(5), "the agent to see its key", || {
        std::fs::read_to_string(dir.join("transcript.log")).is_ok_and(|t| t.contains("key-present"))
    });
    let mut outputs = vec![
        run.stdout,
        run.stderr,
        env.reins(&["status", "--json"]).ok().stdout,
        env.reins(&["status", "--all"]).ok().stdout,
        env.reins(&["events", "--id", "sec", "--snapshot"]).ok().stdout,
        std::fs::read_to_string(dir.join("session.json")).unwrap(),
    ];
    let stop = env.reins(&["stop", "--id", "sec"]).ok();
    outputs.extend([stop.stdout, stop.stderr]);
    for file in ["events.jsonl", "exit.json", "host.log"] {
        outputs.push(std::fs::read_to_string(dir.join(file)).unwrap());
    }
    for (i, text) in outputs.iter().enumerate() {
        assert!(!text.contains("SECRET"), "output {i} leaks a secret:\n{text}");
    }
    assert!(outputs[5].contains("--api-key"), "the flag is kept, only its value is redacted");
}
