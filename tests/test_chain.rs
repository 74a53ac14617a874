//! `reins chain`: a three-step chain whose batch has a task that passes on
//! the gate's retry and one the gate skips, a gate agent that answers
//! garbage (the rules decide) or a valid decision, resume after the runner
//! was killed mid-batch, SIGTERM, and bad chain files — all with mock
//! agents configured in config.toml.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, eventually, field};

/// `w` works quickly; `gatekeeper` answers nonsense; `decider` skips
/// task work-1 whatever happened.
const CONFIG: &str = r#"
[agents.w]
agent = "mock"
args = ["--work", "0.2"]

[agents.gatekeeper]
agent = "mock"
args = ["--work", "0.1", "--reply", "done [[reply:sure, retry them all]]"]

[agents.decider]
agent = "mock"
args = ["--work", "0.1", "--reply", "done [[reply:{\"decisions\": [{\"task\": \"work-1\", \"action\": \"skip\", \"brief_note\": \"not worth it\"}]}]]"]
"#;

/// The done check of the batch: `flaky` fails its first check and passes
/// after, `broken` never passes, anything else passes.
const CHECK: &str = r#"case "$1" in
  flaky) test -f flaky.marker || { touch flaky.marker; echo "flaky: not yet"; exit 1; } ;;
  broken) echo "broken: still broken"; exit 1 ;;
esac
"#;

/// plan → implement (a batch of three) → review.
const THREE_STEPS: &str = r#"
[chain]
name = "feat"
task = "add a --json flag"

[[step]]
name = "plan"
agent = "w"
brief = "Plan {{task}}; say what to change."

[[step]]
name = "impl"
agent = "w"
brief = "Implement {{task}} following the plan: {{prev.plan.output}}"
tasks = ["good", "flaky", "broken"]
done = ["cmd:sh check.sh {{task}}"]
REQUIRED

[[step]]
name = "review"
agent = "w"
brief = "Review the work: {{prev.impl.output}}"
"#;

fn env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    std::fs::write(work(&env).join("check.sh"), CHECK).unwrap();
    env
}

fn work(env: &TestEnv) -> PathBuf {
    env.path().join("work")
}

fn write(env: &TestEnv, name: &str, text: &str) {
    std::fs::write(work(env).join(name), text).unwrap();
}

fn chain_dir(env: &TestEnv, id: &str) -> PathBuf {
    env.state_dir().join("chains").join(id)
}

fn log(env: &TestEnv, id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(chain_dir(env, id).join("events.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn state(env: &TestEnv, id: &str) -> Option<Value> {
    let text = std::fs::read_to_string(chain_dir(env, id).join("state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn tasks(out: &Value, step: usize) -> Vec<Value> {
    out["steps"][step]["tasks"].as_array().unwrap().clone()
}

#[test]
fn a_batch_where_the_gate_retries_one_task_and_skips_another_ends_with_an_honest_summary() {
    let env = env();
    write(&env, "chain.toml", &THREE_STEPS.replace("REQUIRED", "required = false"));
    let run = env.reins(&["chain", "run", "chain.toml", "--json"]).ok();
    let out = run.json();
    // Every required step was accepted; the optional one lost a task.
    assert_eq!(out["result"], "partial", "{out}");
    assert_eq!(out["id"], "feat");
    let steps: Vec<&str> =
        out["steps"].as_array().unwrap().iter().map(|s| s["result"].as_str().unwrap()).collect();
    assert_eq!(steps, ["accepted", "partial", "accepted"]);
    let batch = tasks(&out, 1);
    assert_eq!(field(&batch, "task"), ["impl-1", "impl-2", "impl-3"]);
    assert_eq!(field(&batch, "result"), ["accepted", "accepted", "skipped"]);
    let runs: Vec<u64> = batch.iter().map(|t| t["runs"].as_u64().unwrap()).collect();
    assert_eq!(runs, [1, 2, 2]);
    assert!(batch[2]["reason"].as_str().unwrap().contains("broken: still broken"), "{out}");
    assert_eq!(out["attempts"], 7, "plan 1, good 1, flaky 2, broken 2, review 1");

    // The gate ran only after batches with a failure, by the rules.
    let log = log(&env, "feat");
    let gates: Vec<&Value> = log.iter().filter(|e| e["type"] == "gate").collect();
    assert_eq!(gates.len(), 3, "one per batch with a failure: {gates:?}");
    assert!(gates.iter().all(|g| g["by"] == "rules"));
    let decisions: Vec<(&str, &str)> = gates
        .iter()
        .flat_map(|g| g["decisions"].as_array().unwrap())
        .map(|d| (d["task"].as_str().unwrap(), d["action"].as_str().unwrap()))
        .collect();
    assert_eq!(decisions, [("impl-2", "retry"), ("impl-3", "retry"), ("impl-3", "skip")]);
    let types: Vec<&str> = log.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"chain_started"));
    assert_eq!(types.last(), Some(&"chain_ended"));
    assert_eq!(types.iter().filter(|t| **t == "attempt").count(), 7);
    assert_eq!(types.iter().filter(|t| **t == "step_ended").count(), 3);
    let attempt = log.iter().find(|e| e["type"] == "attempt" && e["task"] == "impl-2").unwrap();
    assert_eq!(
        (attempt["step"].as_str(), attempt["session"].as_str()),
        (Some("impl"), Some("feat-impl-2"))
    );
    let end = log.last().unwrap();
    assert_eq!(end["result"], "partial");
    assert_eq!(end["steps"][1]["tasks"][2]["result"], "skipped");

    // The retry's brief carries the failure and a narrower scope; the
    // batch got the plan's output.
    let retry = env.brief("feat-impl-2-b");
    assert!(retry.contains("flaky: not yet") && retry.contains("Narrow your scope"), "{retry}");
    assert!(!env.brief("feat-impl-2").contains("Narrow your scope"));
    assert!(
        env.brief("feat-impl-1").contains("Plan add a --json flag"),
        "{}",
        env.brief("feat-impl-1")
    );
    assert!(env.brief("feat-review").contains("[impl-1: good]"), "{}", env.brief("feat-review"));

    // The store matches.
    let rows = env.dispatch_history("feat-impl-2");
    assert_eq!(field(&rows, "session"), ["feat-impl-2", "feat-impl-2-b"]);
    assert_eq!(field(&rows, "result"), ["failed", "accepted"]);
    assert!(rows.iter().all(|r| r["labels"] == serde_json::json!(["chain:feat", "step:impl"])));
    assert_eq!(field(&env.dispatch_history("feat-impl-3"), "result"), ["failed", "failed"]);
    // A task's failure does not rest the agent in a chain.
    let agents = env.reins(&["agents", "--json", "w"]).ok().json();
    assert_eq!(agents["agents"][0]["availability"]["available"], true, "{agents}");

    // State on disk, private; status agrees; nothing left running.
    let st = chain_dir(&env, "feat").join("state.json");
    assert_eq!(crate::common::mode(&st) & 0o777, 0o600);
    let status = env.reins(&["chain", "status", "feat", "--json"]).ok().json();
    assert_eq!(
        (status["result"].as_str(), status["runner_alive"].as_bool()),
        (Some("partial"), Some(false))
    );
    let table = env.reins(&["chain", "status"]).ok().stdout;
    assert!(table.contains("feat") && table.contains("partial"), "{table}");
    for id in ["feat-plan", "feat-impl-1", "feat-impl-2-b", "feat-impl-3-b", "feat-review"] {
        assert!(!env.listed(id), "{id} still runs");
    }

    // The same chain with the batch required: it fails, review never runs.
    std::fs::remove_file(work(&env).join("flaky.marker")).unwrap();
    write(&env, "strict.toml", &THREE_STEPS.replace("REQUIRED", ""));
    let run = env.reins(&["chain", "run", "strict.toml", "--json"]).code(1);
    let out = run.json();
    assert_eq!(out["id"], "feat-2", "the name was taken: the next free id");
    assert_eq!(out["result"], "failed");
    let steps: Vec<&str> =
        out["steps"].as_array().unwrap().iter().map(|s| s["result"].as_str().unwrap()).collect();
    assert_eq!(steps, ["accepted", "failed", "not_run"]);
    assert!(run.stderr.contains("required step impl failed"), "{}", run.stderr);
}

/// One batch step: `flaky` fails once, `good` passes.
const GATED: &str = r#"
[chain]
name = "gated"
max_parallel = 2

[[step]]
name = "work"
agent = "w"
brief = "Do {{task}}. {{feedback}}"
tasks = ["flaky", "good"]
done = ["cmd:sh check.sh {{task}}"]
"#;

#[test]
fn a_gate_agent_that_answers_garbage_falls_back_to_the_rules() {
    let env = env();
    write(&env, "gated.toml", GATED);
    let run = env
        .reins(&[
            "chain",
            "run",
            "gated.toml",
            "--gate-agent",
            "gatekeeper",
            "--gate-timeout",
            "20s",
            "--json",
        ])
        .ok();
    let out = run.json();
    assert_eq!(out["result"], "accepted", "{out}");
    let gate = log(&env, "gated").into_iter().find(|e| e["type"] == "gate").unwrap();
    assert_eq!(gate["by"], "fallback", "{gate}");
    assert_eq!(gate["agent"], "gatekeeper");
    assert!(gate["fallback"].as_str().unwrap().contains("no JSON decision"), "{gate}");
    assert_eq!(gate["decisions"][0]["action"], "retry");
    assert!(run.stderr.contains("gate agent gatekeeper: no JSON decision"), "{}", run.stderr);
    assert!(run.stderr.contains("the rules decide"), "{}", run.stderr);
    // The gate agent saw the failure, and was stopped.
    let asked = env.brief("gated-gate-1");
    assert!(asked.contains("\"work-1\"") && asked.contains("flaky: not yet"), "{asked}");
    assert!(!env.listed("gated-gate-1"));

    // A valid decision is followed: work-1 is skipped, not retried.
    std::fs::remove_file(work(&env).join("flaky.marker")).unwrap();
    let out = env
        .reins(&[
            "chain",
            "run",
            "gated.toml",
            "--id",
            "decided",
            "--gate-agent",
            "decider",
            "--json",
        ])
        .code(1)
        .json();
    let gate = log(&env, "decided").into_iter().find(|e| e["type"] == "gate").unwrap();
    assert_eq!(gate["by"], "agent", "{gate}");
    assert_eq!(gate["decisions"][0]["action"], "skip");
    assert_eq!(field(&tasks(&out, 0), "result"), ["skipped", "accepted"], "{out}");
    assert_eq!(out["result"], "failed", "a required step lost a task");
}

/// A batch where `quick` is done at once and `slow` works until the agent
/// is reconfigured.
const SLOW: &str = r#"
[chain]
name = "long"

[[step]]
name = "work"
agent = "w"
brief = "{{task}}"
tasks = ["[[wait:0.1]] quick", "slow"]

[[step]]
name = "review"
agent = "w"
brief = "[[wait:0.1]] review {{prev.work.output}}"
"#;

#[test]
fn resume_after_the_runner_is_killed_mid_batch_runs_only_what_was_not_accepted() {
    let env = env();
    env.write_config("[agents.w]\nagent = \"mock\"\nargs = [\"--work\", \"60\"]\n");
    write(&env, "long.toml", SLOW);
    let mut child = env.spawn(&["chain", "run", "long.toml"]);
    eventually(Duration::from_secs(20), "quick accepted, slow working", || {
        state(&env, "long").is_some_and(|st| {
            let t = &st["steps"][0]["tasks"];
            t[0]["status"] == "accepted" && t[1]["sessions"][0] == "long-work-2"
        }) && env.listed("long-work-2")
    });
    env.wait_event("long-work-2", Duration::from_secs(15), |e| e["type"] == "turn_started");
    crate::common::signal(child.id() as i32, 9);
    child.wait().unwrap();

    let status = env.reins(&["chain", "status", "long", "--json"]).ok().json();
    assert_eq!(
        (status["result"].as_str(), status["runner_alive"].as_bool()),
        (Some("running"), Some(false))
    );
    let text = env.reins(&["chain", "status", "long"]).ok().stdout;
    assert!(text.contains("reins chain resume long"), "{text}");
    assert!(env.listed("long-work-2"), "the dead runner's session is still there");

    // Now the agent is quick; resume.
    env.write_config("[agents.w]\nagent = \"mock\"\nargs = [\"--work\", \"0.2\"]\n");
    let run = env.reins(&["chain", "resume", "long", "--json"]).ok();
    let out = run.json();
    assert_eq!(out["result"], "accepted", "{out}\n{}", run.stderr);
    assert_eq!(out["resumes"], 1);
    let work = tasks(&out, 0);
    assert_eq!(field(&work, "result"), ["accepted", "accepted"]);
    assert_eq!(work[0]["runs"], 1, "the accepted task was not run again");
    assert_eq!(work[1]["session"], "long-work-2-b", "a fresh session");
    assert!(!env.listed("long-work-2"), "the dead runner's session was stopped");

    // The store says what happened.
    assert_eq!(field(&env.dispatch_history("long-work-1"), "result"), ["accepted"]);
    let rows = env.dispatch_history("long-work-2");
    assert_eq!(field(&rows, "session"), ["long-work-2", "long-work-2-b"]);
    assert_eq!(field(&rows, "result"), ["interrupted", "accepted"]);
    assert!(rows[0]["reason"].as_str().unwrap().contains("chain runner stopped"));
    let log = log(&env, "long");
    let resumed = log.iter().find(|e| e["type"] == "resumed").unwrap();
    assert_eq!(resumed["rerun"], serde_json::json!(["work-2"]));
    assert_eq!(resumed["stopped"][0], "long-work-2");
    let started: Vec<&Value> = log.iter().filter(|e| e["type"] == "task_started").collect();
    assert_eq!(started.iter().filter(|e| e["task"] == "work-1").count(), 1);

    // An ended chain is not resumed.
    let run = env.reins(&["chain", "resume", "long"]).code(2);
    assert!(run.stderr.contains("already ended"), "{}", run.stderr);
}

#[test]
fn sigterm_stops_the_chain_and_every_session_it_started() {
    let env = env();
    env.write_config("[agents.w]\nagent = \"mock\"\nargs = [\"--work\", \"60\"]\n");
    write(&env, "long.toml", SLOW);
    let mut child = env.spawn(&["chain", "run", "long.toml", "--id", "term"]);
    env.wait_event("term-work-2", Duration::from_secs(20), |e| e["type"] == "turn_started");
    crate::common::signal(child.id() as i32, 15);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    eventually(Duration::from_secs(5), "term-work-2 to be stopped", || !env.listed("term-work-2"));
    let st = state(&env, "term").unwrap();
    assert_eq!(st["status"], "interrupted");
    assert_eq!(st["steps"][0]["tasks"][1]["status"], "interrupted");
    assert_eq!(field(&env.dispatch_history("term-work-2"), "result"), ["interrupted"]);
}

#[test]
fn bad_chain_files_are_refused_before_anything_starts() {
    let env = env();
    let bad = |text: &str, said: &str| {
        write(&env, "bad.toml", text);
        let run = env.reins(&["chain", "run", "bad.toml"]).code(2);
        assert!(run.stderr.contains(said), "{said:?} not in:\n{}", run.stderr);
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    };
    let step = |name: &str, extra: &str| {
        format!("[[step]]\nname = \"{name}\"\nagent = \"w\"\nbrief = \"go\"\n{extra}\n")
    };
    bad(
        &format!("{}{}{}", step("a", "needs = [\"c\"]"), step("b", ""), step("c", "")),
        "bad.toml:1: the steps' needs form a cycle: a → c → b → a",
    );
    bad(&step("a", "needs = [\"a\"]"), "needs itself");
    bad(&step("a", "needs = [\"zz\"]"), "needs \"zz\", which is not a step");
    bad(
        &format!("{}[[step]]\nname = \"b\"\nagent = \"nobody\"\nbrief = \"x\"\n", step("a", "")),
        "bad.toml:6: step \"b\": no agent named \"nobody\"",
    );
    bad(
        "[[step]]\nname = \"a\"\nagent = \"w\"\nbrief_file = \"missing.md\"\n",
        "step \"a\": brief_file",
    );
    bad(
        "[[step]]\nname = \"a\"\nagent = \"w\"\nbrief = \"do {{tsak}}\"\n",
        "bad.toml:4: step \"a\": unknown placeholder {{tsak}}",
    );
    bad(
        &format!(
            "{}{}",
            step("a", ""),
            "[[step]]\nname = \"b\"\nagent = \"w\"\nneeds = []\nbrief = \"{{prev.a.output}}\"\n"
        ),
        "step \"a\" does not run before it",
    );
    bad(&step("a", "done = [\"tests\"]"), "step \"a\": done: \"tests\" is not a done check");
    bad(&step("a", "tasks = [\"x\"]"), "fans out tasks but its brief has no {{task}}");
    bad(&step("a", "blocked_grace = \"soon\""), "bad.toml:1: step \"a\": blocked_grace:");
    bad("[chain]\nname = \"x\"\nmax_paralel = 2\n", "bad.toml:3: unknown field `max_paralel`");
    bad("[chain]\nname = \"x\"\n", "no [[step]] tables");
    let run = env.reins(&["chain", "run", "nothing-here.toml"]).code(2);
    assert!(run.stderr.contains("cannot read chain file"), "{}", run.stderr);
    let run = env.reins(&["chain", "status", "nope"]).code(1);
    assert!(run.stderr.contains("no chain \"nope\""), "{}", run.stderr);
    // Nothing was started or recorded.
    assert!(
        !env.state_dir().join("chains").exists()
            || std::fs::read_dir(env.state_dir().join("chains")).unwrap().next().is_none()
    );
    assert!(!env.state_dir().join("sessions").exists());
}

#[test]
fn a_step_without_an_agent_is_routed_by_the_config_rules() {
    let env = TestEnv::new();
    env.write_config(
        "[agents.a]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
         [agents.b]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
         [[route]]\nwhen = [\"label:step:review\", \"(?i)review\"]\nprefer = [\"b\"]\n",
    );
    write(
        &env,
        "chain.toml",
        "[chain]\nname = \"routed\"\ntask = \"x\"\n\n\
         [[step]]\nname = \"plan\"\nprefer = [\"a\"]\nbrief = \"Plan {{task}}\"\n\n\
         [[step]]\nname = \"review\"\nbrief = \"Review {{task}}\"\n",
    );
    let out = env.reins(&["chain", "run", "chain.toml", "--json"]).ok().json();
    assert_eq!(out["result"], "accepted", "{out:#}");
    assert_eq!(field(&env.dispatch_history("routed-plan"), "agent"), ["a"], "prefer wins");
    assert_eq!(field(&env.dispatch_history("routed-review"), "agent"), ["b"], "the rule picked b");
}

#[test]
fn a_process_that_took_the_runners_pid_is_not_the_runner() {
    let env = env();
    write(
        &env,
        "one.toml",
        "[chain]\nname = \"one\"\n\n[[step]]\nname = \"a\"\nagent = \"w\"\nbrief = \"x\"\n",
    );
    env.reins(&["chain", "run", "one.toml"]).ok();
    // A process whose command line looks like a runner's.
    let mut imposter = std::process::Command::new("sh")
        .args(["-c", "sleep 30", "chain", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let ticks = std::fs::read_to_string(format!("/proc/{}/stat", imposter.id())).unwrap();
    let ticks: u64 =
        ticks[ticks.rfind(')').unwrap() + 2..].split(' ').nth(19).unwrap().parse().unwrap();
    let path = chain_dir(&env, "one").join("state.json");
    let mut st: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    st["status"] = "running".into();
    st["runner_pid"] = imposter.id().into();
    let alive = |st: &Value| {
        std::fs::write(&path, serde_json::to_vec(st).unwrap()).unwrap();
        env.reins(&["chain", "status", "one", "--json"]).ok().json()["runner_alive"].clone()
    };
    st["runner_start_ticks"] = (ticks + 1).into();
    assert_eq!(alive(&st), false, "same pid, started at another time");
    st["runner_start_ticks"] = ticks.into();
    assert_eq!(alive(&st), true, "the very process");
    let refused = env.reins(&["chain", "resume", "one"]).code(1);
    assert!(refused.stderr.contains("running"), "{}", refused.stderr);
    // The shell and its sleep, as a group.
    crate::common::signal(-(imposter.id() as i32), 9);
    imposter.wait().unwrap();
}

/// `{{task}}` was pasted into `cmd:` checks as shell text: a task holding
/// `; touch`, `$(..)` or quotes ran commands. Every quoting a check can put
/// it in must see the literal task, and nothing else may run.
#[test]
fn task_text_in_a_cmd_check_is_never_shell_syntax() {
    let env = env();
    let task = r#"a'b"c; touch pwned1 $(touch pwned2) `touch pwned3` ' ; touch pwned4 '"#;
    let chain = format!(
        "[chain]\nname = \"quoted\"\n\n[[step]]\nname = \"s\"\nagent = \"w\"\n\
         brief = \"Do {{{{task}}}}\"\ntasks = [{task:?}]\ndone = [\n\
         \"cmd:printf %s {{{{task}}}} > bare.seen\",\n\
         \"cmd:printf %s \\\"{{{{task}}}}\\\" > double.seen\",\n\
         \"cmd:printf %s '{{{{task}}}}' > single.seen\",\n\
         \"cmd:printf %s \\\"x{{{{task}}}}y\\\"'z{{{{task}}}}' > mixed.seen\",\n]\n",
    );
    write(&env, "quoted.toml", &chain);
    let out = env.reins(&["chain", "run", "quoted.toml", "--json"]).ok().json();
    assert_eq!(out["result"], "accepted", "{out:#}");
    let seen = |name: &str| std::fs::read_to_string(work(&env).join(name)).unwrap();
    assert_eq!(seen("bare.seen"), task);
    assert_eq!(seen("double.seen"), task);
    assert_eq!(seen("single.seen"), task);
    assert_eq!(seen("mixed.seen"), format!("x{task}yz{task}"));
    for file in ["pwned1", "pwned2", "pwned3", "pwned4"] {
        assert!(!work(&env).join(file).exists(), "the task text ran a command that made {file}");
    }
}

/// Two `chain resume` runs of one chain both went on, each starting the
/// same tasks again. One runner at a time: the second is refused at once,
/// naming the first's pid, and exits 1.
#[test]
fn a_second_resume_of_a_running_chain_is_refused() {
    let env = env();
    env.write_config("[agents.w]\nagent = \"mock\"\nargs = [\"--work\", \"60\"]\n");
    write(&env, "long.toml", SLOW);
    let mut first = env.spawn(&["chain", "run", "long.toml", "--id", "twice"]);
    env.wait_event("twice-work-2", Duration::from_secs(20), |e| e["type"] == "turn_started");
    // While `run` runs it, neither a resume nor a run with its id may start.
    let refused = env.reins(&["chain", "resume", "twice"]).code(1);
    let pid = format!("runner pid {}", first.id());
    assert!(refused.stderr.contains(&pid), "{}", refused.stderr);
    crate::common::signal(first.id() as i32, 15);
    assert_eq!(first.wait().unwrap().code(), Some(130));

    // Two resumes at once: exactly one goes on.
    let mut a = env.spawn(&["chain", "resume", "twice"]);
    let mut b = env.spawn(&["chain", "resume", "twice"]);
    let mut ended = None;
    eventually(Duration::from_secs(20), "one resume to be refused", || {
        ended = [&mut a, &mut b].iter_mut().position(|c| c.try_wait().unwrap().is_some());
        ended.is_some()
    });
    let (loser, mut winner) = if ended == Some(0) { (a, b) } else { (b, a) };
    assert!(winner.try_wait().unwrap().is_none(), "both resumes ended");
    let out = loser.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let pid = format!("chain twice is already running (runner pid {})", winner.id());
    assert!(stderr.contains(&pid), "{stderr}");
    eventually(Duration::from_secs(10), "the winner to be the runner", || {
        state(&env, "twice").is_some_and(|st| st["runner_pid"] == winner.id())
    });
    crate::common::signal(winner.id() as i32, 15);
    assert_eq!(winner.wait().unwrap().code(), Some(130));
    let resumed = log(&env, "twice").iter().filter(|e| e["type"] == "resumed").count();
    assert_eq!(resumed, 1, "only one resume went on");
}

#[test]
fn check_refuses_a_chain_whose_agents_cannot_run_here() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{CONFIG}\n[agents.ghost]\nagent = \"generic\"\nargs = [\"no-such-agent-program-here\"]\n"
    ));
    let file = |agent: &str| {
        format!(
            "[[step]]\nname = \"plan\"\nagent = \"w\"\nbrief = \"plan it\"\n\n\
             [[step]]\nname = \"build\"\nagent = \"{agent}\"\nbrief = \"build it\"\n"
        )
    };
    write(&env, "ok.toml", &file("w"));
    let ok = env.reins(&["chain", "run", "ok.toml", "--check"]).ok();
    assert!(ok.stdout.contains("agents w"), "{}", ok.stdout);
    write(&env, "ghost.toml", &file("ghost"));
    let bad = env.reins(&["chain", "run", "ghost.toml", "--check"]).code(1);
    assert!(bad.stderr.contains("step build: agent ghost cannot run here"), "{}", bad.stderr);
    assert!(bad.stderr.contains("not on PATH"), "{}", bad.stderr);
    assert!(bad.stderr.contains("hint:"), "{}", bad.stderr);
    assert!(!env.state_dir().join("sessions").exists(), "--check starts nothing");
}

/// A batch with a flaky task, then a review the gate can brief.
const EVIDENCE: &str = r#"
[chain]
name = "ev"
max_parallel = 2

[[step]]
name = "work"
agent = "w"
brief = "Do {{task}}. {{feedback}}"
tasks = ["flaky", "good"]
done = ["cmd:sh check.sh {{task}}"]

[[step]]
name = "review"
agent = "w"
brief = "Review the work."
"#;

#[test]
fn a_gate_reads_the_failure_artifacts_and_routes_context_to_a_pending_task() {
    let env = env();
    let mut config = CONFIG.to_string();
    config.push_str(
        "\n[agents.analyst]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\", \"--reply\", \
         \"done [[reply:{\\\"analysis\\\": \\\"flaky needs its marker\\\", \\\"decisions\\\": \
         [{\\\"task\\\": \\\"work-1\\\", \\\"action\\\": \\\"retry\\\"}], \\\"context\\\": \
         [{\\\"task\\\": \\\"review\\\", \\\"note\\\": \\\"work-1 was flaky\\\"}]}]]\"]\n",
    );
    env.write_config(&config);
    write(&env, "ev.toml", EVIDENCE);
    let out =
        env.reins(&["chain", "run", "ev.toml", "--gate-agent", "analyst", "--json"]).ok().json();
    assert_eq!(out["result"], "accepted", "{out}");
    let gate = log(&env, "ev").into_iter().find(|e| e["type"] == "gate").unwrap();
    assert_eq!(gate["by"], "agent", "{gate}");
    assert_eq!(gate["analysis"], "flaky needs its marker", "{gate}");
    assert_eq!(gate["context"][0]["task"], "review", "{gate}");
    // The gate saw the failed check's output file and its tail, the
    // accepted task and the pending one.
    let asked = env.brief("ev-gate-1");
    assert!(asked.contains("-check-1.log") && asked.contains("flaky: not yet"), "{asked}");
    assert!(asked.contains("\"pending\"") && asked.contains("\"review\""), "{asked}");
    assert!(asked.contains("\"accepted\""), "{asked}");
    // The review task's brief carries the gate's context.
    let st = state(&env, "ev").unwrap();
    let review = st["steps"][1]["tasks"][0]["sessions"][0].as_str().unwrap().to_string();
    let brief = env.brief(&review);
    assert!(brief.contains("From the gate: work-1 was flaky"), "{brief}");
}
