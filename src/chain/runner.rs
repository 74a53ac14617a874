//! Runs a chain: its steps in order of `needs`, the tasks of a step in
//! batches of at most `max_parallel`, every run of a task one dispatch
//! ([`crate::dispatch::drive`]: the same choice of agent, done checks,
//! verifier, ladders, store rows and log as `reins dispatch`), a gate at
//! the end of every batch that had a failure.
//!
//! Everything that happens is written down as it happens: `state.json`
//! (replaced atomically after every change) and `events.jsonl`
//! (`chain_started`, `step_started`, `task_started`, `attempt` — dispatch's
//! own, with `step` and `task` added —, `task_ended`, `gate`, `step_ended`,
//! `chain_ended`, and `resumed`). A runner that dies leaves enough behind
//! for `reins chain resume` to stop its sessions and go on.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::chain::file::{self, StepDef};
use crate::chain::gate::{self, Action, By, Decision, Failed};
use crate::chain::state::{ChainState, ChainStatus, StepStatus, TaskStatus};
use crate::config::{AgentSpec, Agents};
use crate::dispatch::sessions::{Launch, Reins, TurnEnd};
use crate::dispatch::{self, Cancel, Ending, Plan, Route, Rung};
use crate::store::events::EventWriter;
use crate::store::outcomes::Store;
use crate::store::paths::StateRoot;

/// How much of an accepted attempt's screen becomes its output.
const OUTPUT_LINES: usize = 40;
const OUTPUT_CHARS: usize = 6000;

/// How a chain is run (beyond its file).
pub(crate) struct Options {
    pub(crate) gate_agent: Option<AgentSpec>,
    pub(crate) gate_timeout: Duration,
    /// Print progress lines on stderr.
    pub(crate) quiet: bool,
    /// How the workers' approval requests are answered.
    pub(crate) approve: crate::host::ApprovalPolicy,
    /// How long a session may sit blocked before it fails (a step's own
    /// `blocked_grace` wins for its sessions).
    pub(crate) blocked_grace: Duration,
}

/// The chain's own events (same envelope as a session's).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Note<'a> {
    ChainStarted {
        name: &'a str,
        file: &'a std::path::Path,
        steps: Vec<&'a str>,
        max_parallel: u32,
        max_tries: u32,
        gate: String,
    },
    Resumed {
        n: u32,
        stopped: &'a [String],
        rerun: &'a [String],
    },
    StepStarted {
        step: &'a str,
        tasks: usize,
        required: bool,
    },
    TaskStarted {
        step: &'a str,
        task: &'a str,
        run: u32,
        dispatch: &'a str,
    },
    TaskEnded {
        step: &'a str,
        task: &'a str,
        result: TaskStatus,
        run: u32,
        attempts: u32,
        duration_s: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    },
    Gate {
        step: &'a str,
        batch: u32,
        by: By,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fallback: Option<&'a str>,
        decisions: &'a [Decision],
        #[serde(skip_serializing_if = "Option::is_none")]
        analysis: Option<&'a str>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        context: &'a [gate::Context],
    },
    StepEnded {
        step: &'a str,
        result: StepStatus,
        accepted: usize,
        skipped: usize,
        failed: usize,
        duration_s: f64,
    },
    ChainEnded {
        result: ChainStatus,
        duration_s: f64,
        attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        tokens: Option<u64>,
        steps: Value,
    },
}

/// What the runner and the dispatch taps share.
struct Shared {
    st: ChainState,
    dir: PathBuf,
    log: EventWriter,
    quiet: bool,
}

impl Shared {
    fn save(&self) {
        if let Err(err) = self.st.save(&self.dir) {
            eprintln!("reins: warning: cannot write the chain state: {err}");
        }
    }

    fn emit(&mut self, note: &impl Serialize) {
        if let Err(err) = self.log.emit_payload(None, note) {
            eprintln!("reins: warning: cannot write the chain log: {err}");
        }
    }

    fn say(&self, text: &str) {
        if !self.quiet {
            eprintln!("reins chain {}: {text}", self.st.id);
        }
    }
}

struct Runner {
    shared: Rc<RefCell<Shared>>,
    root: StateRoot,
    agents: Agents,
    reins: Reins,
    cancel: Cancel,
    gate_agent: Option<AgentSpec>,
    approve: crate::host::ApprovalPolicy,
    blocked_grace: Duration,
    gate_timeout: Duration,
}

/// Runs (or, with `resumed`, goes on with) the chain whose state is `st`;
/// returns the final state. Ctrl-C and SIGTERM stop it and every session
/// it started; so does the chain's timeout.
pub(crate) fn execute(
    root: StateRoot,
    dir: PathBuf,
    mut st: ChainState,
    agents: Agents,
    opts: Options,
    resumed: bool,
) -> std::io::Result<ChainState> {
    let log = EventWriter::open(&dir.join("events.jsonl"), &crate::ids::random_hex(8), &st.id)?;
    st.claim_runner();
    st.status = ChainStatus::Running;
    let reins = Reins::new(&st.cwd)?;
    let timeout =
        st.chain.timeout().map(|t| t.saturating_sub(crate::time::bounded_secs(st.duration_s)));
    let shared = Rc::new(RefCell::new(Shared { st, dir, log, quiet: opts.quiet }));
    crate::control::runtime().block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        let runner = Runner {
            shared: shared.clone(),
            root,
            agents,
            reins,
            cancel: rx,
            gate_agent: opts.gate_agent,
            gate_timeout: opts.gate_timeout,
            approve: opts.approve,
            blocked_grace: opts.blocked_grace,
        };
        let started = Instant::now();
        if resumed {
            runner.take_over().await;
        } else {
            runner.note_start();
        }
        shared.borrow().save();
        let deadline = timeout.map(|t| tokio::time::Instant::from_std(started + t));
        let watcher = async {
            let ending = tokio::select! {
                _ = int.recv() => Ending::Interrupted,
                _ = term.recv() => Ending::Interrupted,
                _ = async { match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                } } => Ending::Timeout,
            };
            let _ = tx.send(Some(ending));
            std::future::pending::<()>().await
        };
        let status = tokio::select! {
            status = runner.run() => status,
            _ = watcher => unreachable!("the watcher never ends"),
        };
        runner.finish(status, started.elapsed());
        Ok::<_, std::io::Error>(())
    })?;
    let shared = Rc::try_unwrap(shared).map_err(|_| std::io::Error::other("state still shared"))?;
    Ok(shared.into_inner().st)
}

/// Polls every future to its end, concurrently, on this task.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => out[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future ended")).collect()
}

impl Runner {
    fn say(&self, text: &str) {
        self.shared.borrow().say(text);
    }

    fn cancelled(&self) -> Option<ChainStatus> {
        match *self.cancel.borrow() {
            Some(Ending::Timeout) => Some(ChainStatus::Timeout),
            Some(_) => Some(ChainStatus::Interrupted),
            None => None,
        }
    }

    fn note_start(&self) {
        let mut sh = self.shared.borrow_mut();
        let def = sh.st.chain.clone();
        let gate = match &self.gate_agent {
            Some(a) => format!("agent:{}", a.name),
            None => "rules".into(),
        };
        sh.emit(&Note::ChainStarted {
            name: &def.name,
            file: &def.file,
            steps: def.steps.iter().map(|s| s.name.as_str()).collect(),
            max_parallel: def.max_parallel,
            max_tries: def.max_tries,
            gate,
        });
        sh.say(&format!(
            "{} step(s): {}",
            def.steps.len(),
            def.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" → ")
        ));
    }

    /// After a runner died or was stopped: stop the sessions it left, close
    /// its store rows, and mark its unfinished tasks to run again.
    async fn take_over(&self) {
        let (sessions, dispatches, keys) = {
            let mut sh = self.shared.borrow_mut();
            sh.st.resumes += 1;
            let mut sessions: Vec<String> = std::mem::take(&mut sh.st.gate_sessions);
            let mut dispatches = Vec::new();
            let mut keys = Vec::new();
            for step in &mut sh.st.steps {
                for task in &mut step.tasks {
                    if matches!(task.status, TaskStatus::Running | TaskStatus::Interrupted) {
                        for s in &task.sessions {
                            sessions.push(s.clone());
                            sessions.push(format!("{s}-verify"));
                        }
                        dispatches.push(task.dispatch.clone());
                        keys.push(task.key.clone());
                        task.status = TaskStatus::Interrupted;
                    }
                }
            }
            (sessions, dispatches, keys)
        };
        let mut stopped = Vec::new();
        for s in &sessions {
            if self.reins.screen(s).await.is_some() {
                stopped.push(s.clone());
            }
            self.reins.stop(s).await;
        }
        match Store::open_in(&self.root) {
            Ok(store) => {
                for d in &dispatches {
                    let _ = store.close_running(d, "the chain runner stopped before it ended");
                }
            }
            Err(err) => self.say(&format!("warning: {err}")),
        }
        let mut sh = self.shared.borrow_mut();
        let n = sh.st.resumes;
        sh.emit(&Note::Resumed { n, stopped: &stopped, rerun: &keys });
        sh.say(&format!(
            "resumed (#{n}): stopped {} session(s) left behind; running again: {}",
            stopped.len(),
            if keys.is_empty() { "nothing under way".to_string() } else { keys.join(", ") }
        ));
    }

    async fn run(&self) -> ChainStatus {
        let def = self.shared.borrow().st.chain.clone();
        for (si, step) in def.steps.iter().enumerate() {
            let status = self.shared.borrow().st.steps[si].status;
            if matches!(status, StepStatus::Accepted | StepStatus::Partial) {
                continue;
            }
            if !step.required && status == StepStatus::Failed {
                continue;
            }
            if let Some(stop) = self.cancelled() {
                return stop;
            }
            let Some(result) = self.step(si, step).await else {
                return self.cancelled().unwrap_or(ChainStatus::Interrupted);
            };
            if step.required && result != StepStatus::Accepted {
                let mut sh = self.shared.borrow_mut();
                for later in sh.st.steps.iter_mut().skip(si + 1) {
                    if later.status == StepStatus::Pending {
                        later.status = StepStatus::NotRun;
                    }
                }
                sh.say(&format!("required step {} failed; the chain stops", step.name));
                return ChainStatus::Failed;
            }
        }
        let sh = self.shared.borrow();
        if sh.st.steps.iter().all(|s| s.status == StepStatus::Accepted) {
            ChainStatus::Accepted
        } else {
            ChainStatus::Partial
        }
    }

    /// Runs one step's tasks in batches; `None` when the chain was stopped.
    async fn step(&self, si: usize, def: &StepDef) -> Option<StepStatus> {
        let started = Instant::now();
        let mut queue: VecDeque<usize> = {
            let mut sh = self.shared.borrow_mut();
            let step = &mut sh.st.steps[si];
            step.status = StepStatus::Running;
            if step.started_at.is_none() {
                step.started_at = Some(crate::time::now_rfc3339());
            }
            let queue: VecDeque<usize> = step
                .tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| !matches!(t.status, TaskStatus::Accepted | TaskStatus::Skipped))
                .map(|(i, _)| i)
                .collect();
            let n = step.tasks.len();
            sh.emit(&Note::StepStarted { step: &def.name, tasks: n, required: def.required });
            sh.say(&format!("step {} ({} task(s))", def.name, n));
            sh.save();
            queue
        };
        let max_parallel = self.shared.borrow().st.chain.max_parallel;
        let mut width = max_parallel.min(queue.len().max(1) as u32);
        while !queue.is_empty() {
            if self.cancelled().is_some() {
                return None;
            }
            let batch: Vec<usize> = (0..width as usize).filter_map(|_| queue.pop_front()).collect();
            let batch_n = {
                let mut sh = self.shared.borrow_mut();
                sh.st.steps[si].batches += 1;
                sh.st.steps[si].batches
            };
            join_all(batch.iter().map(|&ti| self.task(si, ti, def)).collect()).await;
            if self.cancelled().is_some() {
                return None;
            }
            let failed: Vec<usize> = {
                let sh = self.shared.borrow();
                batch
                    .iter()
                    .copied()
                    .filter(|&ti| sh.st.steps[si].tasks[ti].status == TaskStatus::Failed)
                    .collect()
            };
            if failed.is_empty() {
                continue;
            }
            let decisions = self.gate(si, def, &failed, width, batch_n).await?;
            let mut sh = self.shared.borrow_mut();
            let mut rebatch = false;
            for d in &decisions {
                let Some(ti) = sh.st.steps[si].tasks.iter().position(|t| t.key == d.task) else {
                    continue;
                };
                let task = &mut sh.st.steps[si].tasks[ti];
                match d.action {
                    Action::Skip => task.status = TaskStatus::Skipped,
                    Action::Retry | Action::Rebatch => {
                        task.status = TaskStatus::Pending;
                        task.note = d.brief_note.clone();
                        queue.push_back(ti);
                        rebatch |= d.action == Action::Rebatch;
                    }
                }
            }
            if rebatch {
                width = (width / 2).max(1);
            }
            sh.st.steps[si].gates += decisions.len() as u32;
            sh.save();
        }
        let mut sh = self.shared.borrow_mut();
        let step = &mut sh.st.steps[si];
        let count = |s: TaskStatus| step.tasks.iter().filter(|t| t.status == s).count();
        let (accepted, skipped, failed) =
            (count(TaskStatus::Accepted), count(TaskStatus::Skipped), count(TaskStatus::Failed));
        let result = if accepted == step.tasks.len() {
            StepStatus::Accepted
        } else if accepted == 0 || def.required {
            StepStatus::Failed
        } else {
            StepStatus::Partial
        };
        step.status = result;
        step.ended_at = Some(crate::time::now_rfc3339());
        step.duration_s += round3(started.elapsed().as_secs_f64());
        let duration_s = step.duration_s;
        sh.emit(&Note::StepEnded {
            step: &def.name,
            result,
            accepted,
            skipped,
            failed,
            duration_s,
        });
        sh.say(&format!(
            "step {} {}: {accepted} accepted, {skipped} skipped [{duration_s:.1}s]",
            def.name,
            serde_json::to_value(result)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ));
        sh.save();
        Some(result)
    }

    /// The values of a task's brief placeholders.
    fn values(&self, si: usize, ti: usize) -> HashMap<String, String> {
        let sh = self.shared.borrow();
        let step = &sh.st.steps[si];
        let task = &step.tasks[ti];
        let mut values = HashMap::new();
        let text = task.item.clone().or_else(|| sh.st.chain.task.clone()).unwrap_or_default();
        values.insert("task".to_string(), text);
        values.insert("step".to_string(), step.name.clone());
        values.insert("feedback".to_string(), task.note.clone().unwrap_or_default());
        for other in &sh.st.steps {
            let outputs: Vec<String> = other
                .tasks
                .iter()
                .filter_map(|t| {
                    let out = t.output.as_deref()?;
                    Some(match &t.item {
                        Some(item) => format!("[{}: {item}]\n{out}", t.key),
                        None => out.to_string(),
                    })
                })
                .collect();
            values.insert(format!("prev.{}.output", other.name), outputs.join("\n\n"));
        }
        values
    }

    /// One run of one task: one dispatch.
    async fn task(&self, si: usize, ti: usize, def: &StepDef) {
        let started = Instant::now();
        let values = self.values(si, ti);
        let (dispatch_id, key, run, note, item, context) = {
            let mut sh = self.shared.borrow_mut();
            let task = &mut sh.st.steps[si].tasks[ti];
            task.runs += 1;
            task.status = TaskStatus::Running;
            let out = (
                task.dispatch.clone(),
                task.key.clone(),
                task.runs,
                task.note.clone(),
                task.item.clone(),
                task.context.clone(),
            );
            sh.emit(&Note::TaskStarted {
                step: &def.name,
                task: &out.1,
                run: out.2,
                dispatch: &out.0,
            });
            sh.save();
            out
        };
        let mut brief = file::render(&def.brief, &values);
        if let Some(note) = &note
            && !file::placeholders(&def.brief).iter().any(|(_, k)| k == "feedback")
        {
            brief.push_str(&format!("\n\n{note}"));
        }
        for note in &context {
            brief.push_str(&format!("\n\nFrom the gate: {note}"));
        }
        let outcome =
            self.dispatch(si, ti, def, &dispatch_id, brief, item.as_deref(), &values).await;
        let mut sh = self.shared.borrow_mut();
        let task = &mut sh.st.steps[si].tasks[ti];
        task.duration_s = round3(task.duration_s + started.elapsed().as_secs_f64());
        match outcome {
            Ok(summary) => {
                task.attempts += summary.attempts.len() as u32;
                for a in &summary.attempts {
                    if let Some(t) = a.tokens {
                        task.tokens = Some(task.tokens.unwrap_or(0) + t);
                    }
                }
                match summary.result {
                    Ending::Accepted => {
                        task.status = TaskStatus::Accepted;
                        task.session = summary.session.clone();
                        task.output = summary.answer.as_deref().map(output_of);
                        task.reason = None;
                        task.failure = None;
                    }
                    Ending::Failed => {
                        let last = summary.attempts.last();
                        let reason = last
                            .map(|a| match (&a.reason, &a.feedback) {
                                (Some(r), Some(f)) if a.result == "rejected" => format!("{r}: {f}"),
                                (Some(r), _) => r.clone(),
                                (None, Some(f)) => f.clone(),
                                (None, None) => a.result.clone(),
                            })
                            .unwrap_or_else(|| "no agent could take it".into());
                        task.failure = Some(
                            gate::kind_of(last.map_or("failed", |a| a.result.as_str()), &reason)
                                .to_string(),
                        );
                        task.evidence = last.map(evidence_of).unwrap_or_default();
                        task.reason = Some(reason);
                        task.status = TaskStatus::Failed;
                    }
                    Ending::Timeout | Ending::Interrupted => task.status = TaskStatus::Interrupted,
                }
            }
            Err(err) => {
                task.status = TaskStatus::Failed;
                task.failure = Some("start".into());
                task.reason = Some(format!("cannot dispatch it: {err}"));
            }
        }
        let (status, attempts, duration_s, reason) =
            (task.status, task.attempts, task.duration_s, task.reason.clone());
        sh.emit(&Note::TaskEnded {
            step: &def.name,
            task: &key,
            result: status,
            run,
            attempts,
            duration_s,
            reason: reason.as_deref(),
        });
        let shown = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
        sh.say(&format!("task {key} (run {run}) {shown}{why}"));
        sh.save();
    }

    #[expect(clippy::too_many_arguments, reason = "one call site, all of it the task")]
    async fn dispatch(
        &self,
        si: usize,
        ti: usize,
        def: &StepDef,
        id: &str,
        brief: String,
        item: Option<&str>,
        values: &HashMap<String, String>,
    ) -> std::io::Result<dispatch::Summary> {
        let fail = |e: crate::error::CliError| std::io::Error::other(e.message);
        let store = Store::open_in(&self.root).map_err(fail)?;
        let _ = store.close_running(id, "the chain runner stopped before it ended");
        let first_attempt = store.last_attempt_n(id).unwrap_or(0) + 1;
        let chain_id = self.shared.borrow().st.id.clone();
        let labels = vec![format!("chain:{chain_id}"), format!("step:{}", def.name)];
        let route = route(def, &self.agents, &brief, &labels).map_err(fail)?;
        let verifier = def
            .verifier
            .as_deref()
            .map(|v| self.agents.get(v).cloned())
            .transpose()
            .map_err(fail)?;
        let task = item.unwrap_or_else(|| values.get("task").map_or("", String::as_str));
        let checks = def.checks(task).map_err(std::io::Error::other)?;
        let cwd = self.shared.borrow().st.cwd.clone();
        let plan = Plan {
            id: id.to_string(),
            task: brief,
            labels,
            checks,
            check_env: file::check_env(task),
            verifier,
            max_failures: def.max_failures,
            timeout: None,
            attempt_timeout: def.timeout(),
            verify_timeout: Duration::from_secs(600),
            check_timeout: Duration::from_secs(600),
            start_timeout: Duration::from_secs(30),
            program_timeout: Duration::from_secs(10),
            cwd,
            watch: None,
            routed_by: match &route {
                crate::dispatch::Route::Pinned(_) => "agent".into(),
                crate::dispatch::Route::Candidates { how, .. } => how.to_string(),
                crate::dispatch::Route::Ladder(_) => "ladder".into(),
            },
            route,
            first_attempt,
            cool_down: false,
            advisor: None,
            approve: self.approve,
            blocked_grace: def.blocked_grace().unwrap_or(self.blocked_grace),
        };
        let shared = self.shared.clone();
        let (step_name, key) = {
            let sh = self.shared.borrow();
            (def.name.clone(), sh.st.steps[si].tasks[ti].key.clone())
        };
        let tap: dispatch::Tap = Rc::new(move |event: &Value| {
            let mut sh = shared.borrow_mut();
            match event["type"].as_str() {
                Some("attempt_started") => {
                    if let Some(session) = event["session"].as_str() {
                        sh.st.steps[si].tasks[ti].sessions.push(session.to_string());
                        sh.save();
                    }
                }
                Some("attempt") => {
                    let mut copy = serde_json::Map::new();
                    copy.insert("type".into(), json!("attempt"));
                    copy.insert("step".into(), json!(step_name));
                    copy.insert("task".into(), json!(key));
                    for (k, v) in event.as_object().into_iter().flatten() {
                        if !matches!(
                            k.as_str(),
                            "type" | "schema_version" | "run" | "seq" | "ts" | "id" | "turn"
                        ) {
                            copy.insert(k.clone(), v.clone());
                        }
                    }
                    sh.emit(&Value::Object(copy));
                }
                _ => {}
            }
        });
        dispatch::drive(plan, self.root.clone(), store, self.cancel.clone(), Some(tap)).await
    }

    /// Decides about the failed tasks of a batch; `None` when the chain was
    /// stopped meanwhile.
    async fn gate(
        &self,
        si: usize,
        def: &StepDef,
        failed: &[usize],
        width: u32,
        batch: u32,
    ) -> Option<Vec<Decision>> {
        let list: Vec<Failed> = {
            let sh = self.shared.borrow();
            let max_tries = sh.st.chain.max_tries;
            failed
                .iter()
                .map(|&ti| {
                    let t = &sh.st.steps[si].tasks[ti];
                    Failed {
                        task: t.key.clone(),
                        item: t.item.clone(),
                        runs: t.runs,
                        max_tries,
                        failure: t.failure.clone().unwrap_or_else(|| "other".into()),
                        reason: t.reason.clone().unwrap_or_else(|| "no reason recorded".into()),
                        evidence: t.evidence.clone(),
                    }
                })
                .collect()
        };
        let around = {
            let sh = self.shared.borrow();
            gate::Surroundings {
                accepted: sh.st.steps[si]
                    .tasks
                    .iter()
                    .filter(|t| t.status == TaskStatus::Accepted)
                    .map(|t| gate::Accepted {
                        task: t.key.clone(),
                        output: gate::tail(t.output.as_deref().unwrap_or_default()),
                    })
                    .collect(),
                pending: sh
                    .st
                    .steps
                    .iter()
                    .flat_map(|s| &s.tasks)
                    .filter(|t| t.status == TaskStatus::Pending)
                    .map(|t| t.key.clone())
                    .collect(),
            }
        };
        let mut analysis = None;
        let mut context = Vec::new();
        let (decisions, by, fallback) = match &self.gate_agent {
            None => (gate::rules(&list, width), By::Rules, None),
            Some(agent) => match self.ask_gate(agent, def, &list, &around).await {
                Ok(answer) => {
                    analysis = answer.analysis;
                    context = answer.context;
                    (answer.decisions, By::Agent, None)
                }
                Err(why) => {
                    if self.cancelled().is_some() {
                        return None;
                    }
                    self.say(&format!("gate agent {}: {why}; the rules decide", agent.name));
                    (gate::rules(&list, width), By::Fallback, Some(why))
                }
            },
        };
        let mut sh = self.shared.borrow_mut();
        sh.emit(&Note::Gate {
            step: &def.name,
            batch,
            by,
            agent: self.gate_agent.as_ref().map(|a| a.name.as_str()),
            fallback: fallback.as_deref(),
            decisions: &decisions,
            analysis: analysis.as_deref(),
            context: &context,
        });
        // The gate's context goes into those pending tasks' briefs.
        for c in &context {
            if let Some(t) =
                sh.st.steps.iter_mut().flat_map(|s| &mut s.tasks).find(|t| t.key == c.task)
            {
                t.context.push(c.note.clone());
            }
        }
        let by = serde_json::to_value(by).ok().and_then(|v| v.as_str().map(String::from));
        for d in &decisions {
            let action = serde_json::to_value(d.action)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            sh.say(&format!(
                "gate ({}): {} → {action} ({})",
                by.as_deref().unwrap_or(""),
                d.task,
                d.why
            ));
        }
        Some(decisions)
    }

    /// Asks the gate agent; any trouble is an error saying what it was.
    async fn ask_gate(
        &self,
        agent: &AgentSpec,
        def: &StepDef,
        failed: &[Failed],
        around: &gate::Surroundings,
    ) -> Result<gate::Answer, String> {
        let (session, file, chain_id) = {
            let mut sh = self.shared.borrow_mut();
            let n = sh.st.steps.iter().map(|s| s.gates).sum::<u32>() + sh.st.resumes + 1;
            let mut session = format!("{}-gate-{n}", sh.st.id);
            let mut k = n;
            while sh.st.gate_sessions.contains(&session) {
                k += 1;
                session = format!("{}-gate-{k}", sh.st.id);
            }
            sh.st.gate_sessions.push(session.clone());
            sh.save();
            let file = sh.dir.join(format!("{session}.json"));
            (session, file, sh.st.id.clone())
        };
        let _ = crate::store::fsutil::remove_if_exists(&file);
        let key = crate::ids::random_hex(4);
        let brief =
            gate::brief(&chain_id, &def.name, failed, around, &file.display().to_string(), &key);
        let launch = Launch {
            id: &session,
            agent,
            model: agent.model.as_deref(),
            brief: &brief,
            meta: json!({"chain": chain_id, "reins_agent": agent.name, "role": "gate", "step": def.name}),
            description: format!("chain {chain_id} gate of step {}", def.name),
            size: crate::store::registry::Size { cols: 240, rows: 60 },
            start_timeout: Duration::from_secs(30),
            approve: crate::host::ApprovalPolicy::Never,
        };
        let mut cancel = self.cancel.clone();
        let asked = async {
            let started =
                self.reins.start(&launch).await.map_err(|r| format!("it did not start: {r}"))?;
            let grace = def.blocked_grace().unwrap_or(self.blocked_grace);
            let end = crate::dispatch::blocked::wait_task(
                &self.reins,
                &session,
                &started,
                self.gate_timeout,
                grace,
            )
            .await;
            let screen = self.reins.screen(&session).await.unwrap_or_default();
            match end {
                Ok(TurnEnd::Complete(s)) if s == "completed" => Ok(screen),
                Ok(TurnEnd::Timeout) => Err(format!(
                    "no answer within {}",
                    crate::time::human(self.gate_timeout.as_secs_f64())
                )),
                Ok(other) => Err(format!("it did not finish: {other:?}")),
                // Its approvals are refused (never): trust, sign-in or a dialog.
                Err(blocked) => Err(format!("it was {blocked}")),
            }
        };
        let result = tokio::select! {
            r = asked => r,
            _ = cancel.wait_for(Option::is_some) => Err("the chain was stopped".to_string()),
        };
        self.reins.stop(&session).await;
        {
            let mut sh = self.shared.borrow_mut();
            sh.st.gate_sessions.retain(|s| s != &session);
            sh.save();
        }
        let screen = result?;
        let value = match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|err| format!("{} is not JSON: {err}", file.display()))?,
            Err(_) => {
                let after =
                    screen.rfind(&key).map_or(screen.as_str(), |at| &screen[at + key.len()..]);
                crate::dispatch::verdict::last_object_with(after, "decisions").map_err(
                    |e| match e {
                        Some(err) => format!("its answer is not valid JSON: {err}"),
                        None => "no JSON decision in its answer".to_string(),
                    },
                )?
            }
        };
        gate::validate(&value, failed, &around.pending)
    }

    fn finish(&self, status: ChainStatus, elapsed: Duration) {
        let mut sh = self.shared.borrow_mut();
        for step in &mut sh.st.steps {
            for task in &mut step.tasks {
                if task.status == TaskStatus::Running {
                    task.status = TaskStatus::Interrupted;
                }
            }
            if step.status == StepStatus::Running && status != ChainStatus::Running {
                step.duration_s = round3(step.duration_s);
            }
        }
        sh.st.status = status;
        sh.st.ended_at = Some(crate::time::now_rfc3339());
        sh.st.duration_s = round3(sh.st.duration_s + elapsed.as_secs_f64());
        let (duration_s, attempts, tokens) = (sh.st.duration_s, sh.st.attempts(), sh.st.tokens());
        let steps = summary(&sh.st)["steps"].clone();
        sh.emit(&Note::ChainEnded { result: status, duration_s, attempts, tokens, steps });
        sh.say(&format!("{} after {duration_s:.1}s, {attempts} attempt(s)", status.as_str()));
        sh.save();
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The end of an accepted attempt's screen: what `{{prev.STEP.output}}` is.
pub(crate) fn output_of(screen: &str) -> String {
    let frame = |c: char| ('\u{2500}'..='\u{257f}').contains(&c) || c.is_whitespace();
    // Without the agent's frames: box lines, and the borders of boxed ones.
    let lines: Vec<&str> =
        screen.lines().map(|l| l.trim_matches(frame)).filter(|l| !l.is_empty()).collect();
    let text = lines[lines.len().saturating_sub(OUTPUT_LINES)..].join("\n");
    if text.len() <= OUTPUT_CHARS {
        return text;
    }
    let mut cut = text.len() - OUTPUT_CHARS;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    text[cut..].to_string()
}

/// The dispatch route of a step's task (its names were validated): the
/// step's agent, ladder or prefer list, else the pool ordered by the
/// config's `[[route]]` rules for this task's brief and labels.
pub(crate) fn route(
    def: &StepDef,
    agents: &Agents,
    brief: &str,
    labels: &[String],
) -> Result<Route, crate::error::CliError> {
    if let Some(name) = &def.agent {
        return Ok(Route::Pinned(agents.get(name)?.clone()));
    }
    if !def.ladder.is_empty() {
        let rungs = def.ladder.iter().map(|r| Rung::parse(r, agents)).collect::<Result<_, _>>()?;
        return Ok(Route::Ladder(rungs));
    }
    let list: Vec<AgentSpec> = if def.prefer.is_empty() {
        agents.pool().into_iter().cloned().collect()
    } else {
        def.prefer.iter().map(|n| agents.get(n).cloned()).collect::<Result<_, _>>()?
    };
    if list.is_empty() {
        return Err(crate::error::CliError::usage(format!(
            "step {}: no agents to run it",
            def.name
        )));
    }
    if def.prefer.is_empty()
        && let Some((ordered, _)) = agents.routed(&list, brief, labels)
    {
        return Ok(Route::Candidates { agents: ordered, how: "route" });
    }
    Ok(Route::Candidates {
        agents: list,
        how: if def.prefer.is_empty() { "pool" } else { "prefer" },
    })
}

/// The chain in numbers, for `--json`, `status` and `chain_ended`.
pub(crate) fn summary(st: &ChainState) -> Value {
    let steps: Vec<Value> = st
        .steps
        .iter()
        .map(|s| {
            let tasks: Vec<Value> = s
                .tasks
                .iter()
                .map(|t| {
                    json!({
                        "task": t.key,
                        "item": t.item,
                        "result": t.status,
                        "runs": t.runs,
                        "attempts": t.attempts,
                        "session": t.session,
                        "sessions": t.sessions,
                        "duration_s": t.duration_s,
                        "tokens": t.tokens,
                        "reason": t.reason,
                    })
                })
                .collect();
            json!({
                "step": s.name,
                "result": s.status,
                "required": s.required,
                "duration_s": s.duration_s,
                "batches": s.batches,
                "gate_decisions": s.gates,
                "tasks": tasks,
            })
        })
        .collect();
    json!({
        "ok": matches!(st.status, ChainStatus::Accepted | ChainStatus::Partial),
        "id": st.id,
        "name": st.chain.name,
        "result": st.status,
        "duration_s": st.duration_s,
        "attempts": st.attempts(),
        "tokens": st.tokens(),
        "resumes": st.resumes,
        "steps": steps,
    })
}

/// What a failed attempt left for the gate: each failed check's output
/// (its file and last lines) and the verifier's verdict.
fn evidence_of(a: &crate::store::outcomes::Attempt) -> Vec<gate::Evidence> {
    let mut out = Vec::new();
    for check in a.checks.as_array().into_iter().flatten() {
        if check["ok"].as_bool() != Some(false) {
            continue;
        }
        let path = check["output"].as_str().map(str::to_string);
        let text = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| check["detail"].as_str().unwrap_or_default().to_string());
        out.push(gate::Evidence {
            kind: "check".into(),
            what: check["check"].as_str().unwrap_or_default().to_string(),
            path,
            tail: gate::tail(&text),
        });
    }
    if a.verdict.is_some() {
        out.push(gate::Evidence {
            kind: "verdict".into(),
            what: a.verifier.clone().unwrap_or_default(),
            path: None,
            tail: gate::tail(a.feedback.as_deref().unwrap_or_default()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_drops_frames_and_keeps_the_end() {
        let screen = "╭────╮\n│ > do it │\n╰────╯\n● done: wrote PLAN.md\n\n  ✻ Worked for 2s";
        assert_eq!(output_of(screen), "> do it\n● done: wrote PLAN.md\n✻ Worked for 2s");
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert!(output_of(&long).starts_with("line 60\n"));
    }

    /// The keys of one event as the runner writes it, envelope aside.
    fn keys(event: &Value) -> std::collections::BTreeSet<String> {
        let envelope = ["schema_version", "run", "seq", "ts", "id", "turn"];
        event
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !envelope.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// Every type of a chain's log, as written with every optional field
    /// left out and with every one given.
    fn samples() -> Vec<(Value, Value)> {
        let path = std::path::Path::new("chain.toml");
        let names = [String::from("impl-2")];
        let decisions = [Decision {
            task: "impl-2".into(),
            action: Action::Retry,
            brief_note: Some("narrower".into()),
            why: "the gate agent decided".into(),
        }];
        let context = [gate::Context { task: "review".into(), note: "see impl-2".into() }];
        let note = |n: &Note| serde_json::to_value(n).unwrap();
        let both = |bare: Note, full: Note| (note(&bare), note(&full));
        let same = |n: Note| (note(&n), note(&n));
        let attempt = |full: bool| {
            let a = crate::store::outcomes::Attempt {
                tier: full.then(|| "local".into()),
                routed_by: full.then(|| "ladder".into()),
                warm_start: full.then_some(true),
                ..Default::default()
            };
            let mut v = serde_json::to_value(&a).unwrap();
            for (k, x) in [("type", "attempt"), ("step", "impl"), ("task", "impl-2")] {
                v[k] = json!(x);
            }
            v
        };
        vec![
            same(Note::ChainStarted {
                name: "feat",
                file: path,
                steps: vec!["impl"],
                max_parallel: 2,
                max_tries: 2,
                gate: "rules".into(),
            }),
            same(Note::Resumed { n: 1, stopped: &names, rerun: &names }),
            same(Note::StepStarted { step: "impl", tasks: 2, required: true }),
            same(Note::TaskStarted { step: "impl", task: "impl-2", run: 1, dispatch: "d" }),
            (attempt(false), attempt(true)),
            both(
                Note::TaskEnded {
                    step: "impl",
                    task: "impl-2",
                    result: TaskStatus::Accepted,
                    run: 1,
                    attempts: 1,
                    duration_s: 1.0,
                    reason: None,
                },
                Note::TaskEnded {
                    step: "impl",
                    task: "impl-2",
                    result: TaskStatus::Failed,
                    run: 1,
                    attempts: 1,
                    duration_s: 1.0,
                    reason: Some("exit 2"),
                },
            ),
            both(
                Note::Gate {
                    step: "impl",
                    batch: 1,
                    by: By::Rules,
                    agent: None,
                    fallback: None,
                    decisions: &decisions,
                    analysis: None,
                    context: &[],
                },
                Note::Gate {
                    step: "impl",
                    batch: 1,
                    by: By::Fallback,
                    agent: Some("decider"),
                    fallback: Some("it was blocked on trust for 30s, which nobody answered"),
                    decisions: &decisions,
                    analysis: Some("it does not compile"),
                    context: &context,
                },
            ),
            same(Note::StepEnded {
                step: "impl",
                result: StepStatus::Accepted,
                accepted: 1,
                skipped: 0,
                failed: 0,
                duration_s: 1.0,
            }),
            both(
                Note::ChainEnded {
                    result: ChainStatus::Accepted,
                    duration_s: 1.0,
                    attempts: 1,
                    tokens: None,
                    steps: json!([]),
                },
                Note::ChainEnded {
                    result: ChainStatus::Accepted,
                    duration_s: 1.0,
                    attempts: 1,
                    tokens: Some(12),
                    steps: json!([]),
                },
            ),
        ]
    }

    /// docs/events.md shows a chain's log as the runner writes it: its
    /// table lists exactly the types the runner writes, with their
    /// optional fields marked `?`, and every example line has every field
    /// its type always has and none it never has (the gate's decisions
    /// and context notes too).
    #[test]
    fn docs_events_md_shows_the_chain_log_the_runner_writes() {
        let doc = include_str!("../../docs/events.md");
        let section = doc.split("\n## A chain's log").nth(1).expect("a chain's log section");
        let rows: HashMap<&str, &str> =
            section.lines().filter_map(|l| l.strip_prefix("| `")?.split_once('`')).collect();
        let samples = samples();
        let written: std::collections::BTreeSet<&str> =
            samples.iter().map(|(bare, _)| bare["type"].as_str().unwrap()).collect();
        let listed: std::collections::BTreeSet<&str> = rows.keys().copied().collect();
        assert_eq!(listed, written, "the types of a chain's log in docs/events.md");
        for (bare, full) in &samples {
            let name = bare["type"].as_str().unwrap();
            let row = rows[name].rsplit('|').nth(1).unwrap();
            for key in keys(full) {
                if key == "type" {
                    continue;
                }
                let optional = !keys(bare).contains(&key);
                let shown = if optional { format!("`{key}?`") } else { format!("`{key}`") };
                // The attempt row names the store row's fields in part.
                if name != "attempt" || optional || ["step", "task"].contains(&key.as_str()) {
                    assert!(row.contains(&shown), "{name}: {shown} is not in its row: {row}");
                }
            }
        }
        let examples = section.split("```json\n").nth(1).unwrap().split("```").next().unwrap();
        let mut shown = std::collections::BTreeSet::new();
        for line in examples.lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            let name = event["type"].as_str().unwrap();
            let (bare, full) = samples.iter().find(|(b, _)| b["type"] == name).unwrap();
            let (has, least, most) = (keys(&event), keys(bare), keys(full));
            assert!(least.is_subset(&has), "{name}: a field is missing: {line}");
            assert!(has.is_subset(&most), "{name}: a field the runner never writes: {line}");
            if name == "gate" {
                let by = [By::Rules, By::Agent, By::Fallback].map(|b| json!(b));
                assert!(by.contains(&event["by"]), "{line}");
                let decision = keys(&full["decisions"][0]);
                for d in event["decisions"].as_array().unwrap() {
                    assert!(keys(d).is_subset(&decision), "a decision's fields: {line}");
                }
                let note = keys(&full["context"][0]);
                for c in event["context"].as_array().into_iter().flatten() {
                    assert_eq!(keys(c), note, "a context note's fields: {line}");
                }
            }
            shown.insert(name.to_string());
        }
        let written: std::collections::BTreeSet<String> =
            written.into_iter().map(String::from).collect();
        assert_eq!(shown, written, "one example line of each type at least");
    }
}
