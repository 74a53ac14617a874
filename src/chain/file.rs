//! The chain file (`FILE.toml`): its format, and the validation that runs
//! before anything starts. Every mistake is a usage error naming the file,
//! the line where it can be found, and what to write instead.
//!
//! ```toml
//! [chain]
//! name = "feature"        # the chain's id unless --id says otherwise
//! task = "add --json to ls"   # what {{task}} is in a step without tasks
//! max_parallel = 2        # tasks of one batch at once (default 2)
//! max_tries = 2           # runs of one task before the gate skips it
//! timeout = "2h"          # the whole chain (exit 124)
//!
//! [[step]]
//! name = "plan"
//! agent = "claude"        # or prefer = ["codex", "claude"] or ladder = ["cheap:mini", "claude:opus"]
//! brief = "Plan {{task}}. Write PLAN.md."   # or brief_file = "briefs/plan.md"
//! done = ["file:PLAN.md"] # the checks of `reins dispatch --done` ({{task}} in cmd: is $REINS_TASK)
//! verifier = "codex"      # reviews every attempt (JSON verdict)
//! timeout = "20m"         # one attempt
//! blocked_grace = "1m"    # a session of the step blocked this long fails (default: --blocked-grace)
//! needs = []              # default: the step above
//! tasks = ["a", "b"]      # fan out: one task each, {{task}} = the item
//! required = true         # default true: the chain stops if this step fails
//! ```
//!
//! The parsed chain ([`Def`]) is kept in the chain's `state.json`, brief
//! files read in, so `reins chain resume` runs what was validated even if
//! the files changed since.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Agents;
use crate::dispatch::done;
use crate::error::CliError;

/// How many tasks of a batch run at once unless the file says.
pub(crate) const DEFAULT_MAX_PARALLEL: u32 = 2;
/// Runs of one task (the first and the gate's retries) unless the file says.
pub(crate) const DEFAULT_MAX_TRIES: u32 = 2;
/// How long one attempt may work unless the step says.
pub(crate) const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    chain: Option<RawChain>,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    name: Option<String>,
    task: Option<String>,
    max_parallel: Option<u32>,
    max_tries: Option<u32>,
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<String>,
    agent: Option<String>,
    #[serde(default)]
    prefer: Vec<String>,
    #[serde(default)]
    ladder: Vec<String>,
    brief: Option<String>,
    brief_file: Option<String>,
    #[serde(default)]
    done: Vec<String>,
    verifier: Option<String>,
    timeout: Option<String>,
    blocked_grace: Option<String>,
    needs: Option<Vec<String>>,
    tasks: Option<Vec<String>>,
    required: Option<bool>,
    max_failures: Option<u32>,
}

/// A validated chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Def {
    pub(crate) name: String,
    /// The chain file, as given.
    pub(crate) file: PathBuf,
    pub(crate) task: Option<String>,
    pub(crate) max_parallel: u32,
    pub(crate) max_tries: u32,
    pub(crate) timeout_s: Option<f64>,
    /// In the order they run.
    pub(crate) steps: Vec<StepDef>,
}

/// A validated step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepDef {
    pub(crate) name: String,
    pub(crate) agent: Option<String>,
    pub(crate) prefer: Vec<String>,
    pub(crate) ladder: Vec<String>,
    /// The brief template (a brief file's text, read in).
    pub(crate) brief: String,
    pub(crate) done: Vec<String>,
    pub(crate) verifier: Option<String>,
    pub(crate) timeout_s: f64,
    /// How long its sessions (workers, verifiers, the gate of its
    /// batches) may sit blocked; `None`: `reins chain run --blocked-grace`.
    /// Absent in the state of a chain an older reins started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) blocked_grace_s: Option<f64>,
    pub(crate) needs: Vec<String>,
    /// `None`: one task; `Some`: a batch, one task per item.
    pub(crate) tasks: Option<Vec<String>>,
    pub(crate) required: bool,
    /// Failed attempts of one run on one agent before dispatch fails over
    /// (default 1: the gate decides about retries).
    pub(crate) max_failures: u32,
}

impl Def {
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout_s.map(crate::time::bounded_secs)
    }
}

impl StepDef {
    pub(crate) fn timeout(&self) -> Duration {
        crate::time::bounded_secs(self.timeout_s)
    }

    /// Its own blocked grace, when the file gives one.
    pub(crate) fn blocked_grace(&self) -> Option<Duration> {
        self.blocked_grace_s.map(crate::time::bounded_secs)
    }

    /// The done checks with `{{task}}` and `{{step}}` filled in. A `cmd:`
    /// check runs under `sh -c`, where task text (anyone's words: a chain
    /// file, a command line, another agent) must never become shell
    /// syntax: there `{{task}}` becomes a quoted reference to
    /// [`TASK_VAR`], which [`check_env`] sets, so the shell sees the text
    /// only as the value of a variable. A step name is safe as it is
    /// (letters, digits, `.`, `_`, `-`).
    pub(crate) fn checks(&self, task: &str) -> Result<Vec<done::Check>, String> {
        self.done
            .iter()
            .map(|d| {
                let d = d.replace("{{step}}", &self.name);
                match d.parse()? {
                    done::Check::Cmd(cmd) => Ok(done::Check::Cmd(task_by_reference(&cmd))),
                    _ => d.replace("{{task}}", task).parse(),
                }
            })
            .collect()
    }
}

/// The environment variable a chain's `cmd:` done checks find their task
/// in (what `{{task}}` is in the step).
pub(crate) const TASK_VAR: &str = "REINS_TASK";

/// The environment the done checks of a task run with.
pub(crate) fn check_env(task: &str) -> Vec<(String, String)> {
    vec![(TASK_VAR.to_string(), task.to_string())]
}

/// `cmd` with every `{{task}}` replaced by a reference to [`TASK_VAR`]
/// that expands to exactly the task in the quoting it stands in:
/// `"${REINS_TASK}"` outside quotes, `${REINS_TASK}` inside double quotes,
/// `'"${REINS_TASK}"'` inside single quotes. The quoting is read by a small
/// lexer that does not follow `$(..)` or backticks; where it guesses wrong
/// the value may be split into words or stay unexpanded, but it is never
/// parsed as shell syntax: the result of an expansion never is.
fn task_by_reference(cmd: &str) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    const PLACEHOLDER: &str = "{{task}}";
    let mut out = String::with_capacity(cmd.len() + 16);
    let mut quote = Quote::None;
    let mut rest = cmd;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with(PLACEHOLDER) {
            out.push_str(&match quote {
                Quote::None => format!("\"${{{TASK_VAR}}}\""),
                Quote::Double => format!("${{{TASK_VAR}}}"),
                Quote::Single => format!("'\"${{{TASK_VAR}}}\"'"),
            });
            rest = &rest[PLACEHOLDER.len()..];
            continue;
        }
        let mut len = c.len_utf8();
        match (quote, c) {
            (Quote::None | Quote::Double, '\\') => {
                // The escaped character goes with it, whatever it is.
                len += rest[len..].chars().next().map_or(0, char::len_utf8);
            }
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            _ => {}
        }
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

/// Line (from 1) of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The placeholders of a template: the text between `{{` and `}}`.
pub(crate) fn placeholders(template: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = template[from..].find("{{") {
        let start = from + open + 2;
        let Some(close) = template[start..].find("}}") else { break };
        out.push((start - 2, template[start..start + close].trim().to_string()));
        from = start + close + 2;
    }
    out
}

/// Fills a template; unknown placeholders were refused by validation.
pub(crate) fn render(template: &str, values: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut from = 0;
    while let Some(open) = template[from..].find("{{") {
        let start = from + open + 2;
        let Some(close) = template[start..].find("}}") else { break };
        out.push_str(&template[from..from + open]);
        let key = template[start..start + close].trim();
        match values.get(key) {
            Some(value) => out.push_str(value),
            None => out.push_str(&template[from + open..start + close + 2]),
        }
        from = start + close + 2;
    }
    out.push_str(&template[from..]);
    out
}

/// Reads and validates a chain file against the configured agents.
pub(crate) fn load(path: &Path, agents: &Agents) -> Result<Def, CliError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        CliError::usage(format!("cannot read chain file {}: {err}", path.display()))
            .hint("give the path of a chain file (see `reins chain --help` for the format)")
    })?;
    parse(&text, path, agents)
}

pub(crate) fn parse(text: &str, path: &Path, agents: &Agents) -> Result<Def, CliError> {
    let hint = "see `reins chain --help` for the chain file format";
    let at = |line: Option<usize>| match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    let bad = |line: Option<usize>, what: String| {
        CliError::usage(format!("{}: {what}", at(line))).hint(hint)
    };
    let raw: RawFile = toml::from_str(text).map_err(|err| {
        let line = err.span().map(|s| line_of(text, s.start));
        bad(line, err.message().trim().to_string())
    })?;
    // Where each [[step]] starts, for errors.
    let step_lines: Vec<usize> = text
        .match_indices("[[step]]")
        .filter(|(i, _)| text[..*i].rsplit('\n').next().is_some_and(|l| l.trim().is_empty()))
        .map(|(i, _)| line_of(text, i))
        .collect();
    let chain = raw.chain.unwrap_or(RawChain {
        name: None,
        task: None,
        max_parallel: None,
        max_tries: None,
        timeout: None,
    });
    let chain_line = text.find("[chain]").map(|i| line_of(text, i));
    let name = match chain.name {
        Some(name) => name,
        None => path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.trim_end_matches(".chain").to_string())
            .unwrap_or_else(|| "chain".into()),
    };
    if crate::ids::validate(&name).is_err() || name.len() > 24 {
        return Err(bad(
            chain_line,
            format!(
                "[chain] name {name:?}: use at most 24 letters, digits, . _ - (it names sessions)"
            ),
        ));
    }
    let max_parallel = chain.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL);
    if max_parallel == 0 {
        return Err(bad(chain_line, "[chain] max_parallel must be at least 1".into()));
    }
    let max_tries = chain.max_tries.unwrap_or(DEFAULT_MAX_TRIES);
    if max_tries == 0 {
        return Err(bad(chain_line, "[chain] max_tries must be at least 1".into()));
    }
    let timeout_s = match &chain.timeout {
        Some(t) => Some(
            crate::time::parse_duration(t)
                .map_err(|err| bad(chain_line, format!("[chain] timeout: {err}")))?
                .as_secs_f64(),
        ),
        None => None,
    };
    if raw.step.is_empty() {
        return Err(bad(None, "no [[step]] tables: a chain needs at least one step".into()));
    }
    let mut steps: Vec<StepDef> = Vec::new();
    for (i, step) in raw.step.into_iter().enumerate() {
        let line = step_lines.get(i).copied();
        let Some(step_name) = step.name.clone() else {
            return Err(bad(line, format!("step {} has no name", i + 1)));
        };
        let what = format!("step {step_name:?}");
        if crate::ids::validate(&step_name).is_err() || step_name.len() > 16 {
            return Err(bad(
                line,
                format!(
                    "{what}: a step name is at most 16 letters, digits, . _ - (it names sessions)"
                ),
            ));
        }
        if steps.iter().any(|s| s.name == step_name) {
            return Err(bad(line, format!("{what} is defined twice")));
        }
        let routes = [step.agent.is_some(), !step.prefer.is_empty(), !step.ladder.is_empty()];
        if routes.iter().filter(|r| **r).count() > 1 {
            return Err(bad(line, format!("{what}: give one of agent, prefer or ladder")));
        }
        let mut names: Vec<&str> = Vec::new();
        names.extend(step.agent.as_deref());
        names.extend(step.prefer.iter().map(String::as_str));
        for rung in &step.ladder {
            match crate::dispatch::split_rung(rung) {
                Ok((agent, _)) => names.push(agent),
                Err(why) => {
                    return Err(
                        bad(line, format!("{what}: {why}")).hint("write AGENT:MODEL or just AGENT")
                    );
                }
            }
        }
        names.extend(step.verifier.as_deref());
        for agent in names {
            if let Err(err) = agents.get(agent) {
                let mut e = bad(line, format!("{what}: {}", err.message));
                e.hint = err.hint;
                return Err(e);
            }
        }
        let brief = match (&step.brief, &step.brief_file) {
            (Some(_), Some(_)) => {
                return Err(bad(line, format!("{what}: give brief or brief_file, not both")));
            }
            (None, None) => {
                return Err(bad(line, format!("{what} has no brief (brief or brief_file)")));
            }
            (Some(brief), None) => brief.clone(),
            (None, Some(file)) => {
                let full = path.parent().unwrap_or(Path::new(".")).join(file);
                std::fs::read_to_string(&full).map_err(|err| {
                    bad(line, format!("{what}: brief_file {}: {err}", full.display()))
                        .hint("brief_file is relative to the chain file")
                })?
            }
        };
        if brief.trim().is_empty() {
            return Err(bad(line, format!("{what}: the brief is empty")));
        }
        let needs = match step.needs.clone() {
            Some(needs) => needs,
            None => steps.last().map(|s| vec![s.name.clone()]).unwrap_or_default(),
        };
        let timeout_s = match &step.timeout {
            Some(t) => crate::time::parse_duration(t)
                .map_err(|err| bad(line, format!("{what}: timeout: {err}")))?
                .as_secs_f64(),
            None => DEFAULT_STEP_TIMEOUT.as_secs_f64(),
        };
        let blocked_grace_s = match &step.blocked_grace {
            Some(t) => Some(
                crate::time::parse_duration(t)
                    .map_err(|err| bad(line, format!("{what}: blocked_grace: {err}")))?
                    .as_secs_f64(),
            ),
            None => None,
        };
        if let Some(tasks) = &step.tasks {
            if tasks.is_empty() {
                return Err(bad(line, format!("{what}: tasks is empty")));
            }
            if tasks.iter().any(|t| t.trim().is_empty()) {
                return Err(bad(line, format!("{what}: a task is empty")));
            }
        }
        let def = StepDef {
            name: step_name,
            agent: step.agent,
            prefer: step.prefer,
            ladder: step.ladder,
            brief,
            done: step.done,
            verifier: step.verifier,
            timeout_s,
            blocked_grace_s,
            needs,
            tasks: step.tasks,
            required: step.required.unwrap_or(true),
            max_failures: step.max_failures.unwrap_or(1).max(1),
        };
        for check in &def.done {
            let filled = check.replace("{{task}}", "x").replace("{{step}}", "x");
            if let Err(err) = filled.parse::<done::Check>() {
                return Err(bad(line, format!("{what}: done: {err}")));
            }
        }
        steps.push(def);
    }
    // needs: known steps, no cycle.
    let lines: HashMap<String, Option<usize>> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), step_lines.get(i).copied()))
        .collect();
    for step in &steps {
        for need in &step.needs {
            if need == &step.name {
                return Err(bad(
                    lines[&step.name],
                    format!("step {:?} needs itself (a cycle: {0} → {0})", step.name),
                ));
            }
            if !steps.iter().any(|s| &s.name == need) {
                return Err(bad(
                    lines[&step.name],
                    format!("step {:?} needs {need:?}, which is not a step", step.name),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&steps) {
        return Err(bad(
            lines[&cycle[0]],
            format!("the steps' needs form a cycle: {}", cycle.join(" → ")),
        )
        .hint("a step can only need steps that do not need it back; fix `needs`"));
    }
    let order = topo_order(&steps);
    let by_name: BTreeMap<String, StepDef> =
        steps.iter().map(|s| (s.name.clone(), s.clone())).collect();
    // Placeholders: known names, and prev.NAME only of a step that runs
    // before (a step it needs, directly or not).
    for step in &steps {
        let ancestors = ancestors(&steps, &step.name);
        for (offset, key) in placeholders(&step.brief) {
            let ok = match key.as_str() {
                "task" | "step" | "feedback" => true,
                _ => match key.strip_prefix("prev.").and_then(|k| k.strip_suffix(".output")) {
                    Some(name) if ancestors.contains(&name.to_string()) => true,
                    Some(name) if by_name.contains_key(name) => {
                        return Err(bad(
                            brief_line(text, &step.brief, offset).or(lines[&step.name]),
                            format!(
                                "step {:?}: {{{{{key}}}}}: step {name:?} does not run before it \
                                 (add it to needs)",
                                step.name
                            ),
                        ));
                    }
                    _ => false,
                },
            };
            if !ok {
                return Err(bad(
                    brief_line(text, &step.brief, offset).or(lines[&step.name]),
                    format!("step {:?}: unknown placeholder {{{{{key}}}}}", step.name),
                )
                .hint(
                    "placeholders: {{task}}, {{step}}, {{feedback}}, {{prev.STEP.output}} \
                     (STEP a step it needs)",
                ));
            }
        }
        if step.tasks.is_some() && !placeholders(&step.brief).iter().any(|(_, k)| k == "task") {
            return Err(bad(
                lines[&step.name],
                format!(
                    "step {:?} fans out tasks but its brief has no {{{{task}}}} to put them in",
                    step.name
                ),
            ));
        }
    }
    let steps: Vec<StepDef> = order.into_iter().map(|n| by_name[&n].clone()).collect();
    Ok(Def {
        name,
        file: path.to_path_buf(),
        task: chain.task,
        max_parallel,
        max_tries,
        timeout_s,
        steps,
    })
}

/// The line of the chain file where a placeholder of an inline brief is.
fn brief_line(text: &str, brief: &str, offset: usize) -> Option<usize> {
    let first = brief.lines().next()?;
    let at = text.find(first)?;
    Some(line_of(text, at) + brief[..offset].matches('\n').count())
}

/// A cycle of needs, as step names from the first back to it.
fn find_cycle(steps: &[StepDef]) -> Option<Vec<String>> {
    // 0 unvisited, 1 on the path, 2 done.
    let index: HashMap<&str, usize> =
        steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut mark = vec![0u8; steps.len()];
    fn visit(
        i: usize,
        steps: &[StepDef],
        index: &HashMap<&str, usize>,
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        mark[i] = 1;
        path.push(i);
        for need in &steps[i].needs {
            let j = index[need.as_str()];
            if mark[j] == 1 {
                let from = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut cycle: Vec<String> =
                    path[from..].iter().map(|&p| steps[p].name.clone()).collect();
                cycle.push(steps[j].name.clone());
                return Some(cycle);
            }
            if mark[j] == 0
                && let Some(cycle) = visit(j, steps, index, mark, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    for i in 0..steps.len() {
        if mark[i] == 0
            && let Some(cycle) = visit(i, steps, &index, &mut mark, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// Step names in the order they run: a step after everything it needs,
/// file order among the ready ones.
fn topo_order(steps: &[StepDef]) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    while done.len() < steps.len() {
        let next = steps
            .iter()
            .find(|s| !done.contains(&s.name) && s.needs.iter().all(|n| done.contains(n)))
            .expect("no cycle");
        done.push(next.name.clone());
    }
    done
}

/// Every step `name` needs, directly or not.
fn ancestors(steps: &[StepDef], name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        if let Some(step) = steps.iter().find(|s| s.name == n) {
            for need in &step.needs {
                if !out.contains(need) {
                    out.push(need.clone());
                    todo.push(need.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_filled() {
        let t = "do {{task}} after {{ prev.plan.output }}; {{feedback}}";
        let keys: Vec<String> = placeholders(t).into_iter().map(|(_, k)| k).collect();
        assert_eq!(keys, ["task", "prev.plan.output", "feedback"]);
        let values: HashMap<String, String> = [
            ("task".to_string(), "X".to_string()),
            ("prev.plan.output".into(), "P".into()),
            ("feedback".into(), String::new()),
        ]
        .into();
        assert_eq!(render(t, &values), "do X after P; ");
    }

    #[test]
    fn task_in_a_cmd_check_is_a_variable_in_every_quoting() {
        let task = r#"it's "x"; $(touch y) \ `z`"#;
        for (cmd, expect) in [
            (r#"printf %s {{task}}"#, task.to_string()),
            (r#"printf %s "<{{task}}>""#, format!("<{task}>")),
            (r#"printf %s '<{{task}}>'"#, format!("<{task}>")),
            (r#"printf %s \'{{task}}\'"#, format!("'{task}'")),
            (r#"printf %s "\"{{task}}""#, format!("\"{task}")),
        ] {
            let script = task_by_reference(cmd);
            assert!(!script.contains("{{task}}"), "{script}");
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .envs(check_env(task))
                .current_dir(std::env::temp_dir())
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), expect, "{cmd} -> {script}");
        }
    }

    #[test]
    fn cycles_are_named() {
        let step = |name: &str, needs: &[&str]| StepDef {
            name: name.into(),
            agent: None,
            prefer: vec![],
            ladder: vec![],
            brief: "b".into(),
            done: vec![],
            verifier: None,
            timeout_s: 1.0,
            blocked_grace_s: None,
            needs: needs.iter().map(|s| s.to_string()).collect(),
            tasks: None,
            required: true,
            max_failures: 1,
        };
        let steps = [step("a", &[]), step("b", &["a", "c"]), step("c", &["b"])];
        assert_eq!(find_cycle(&steps).unwrap(), ["b", "c", "b"]);
        let steps = [step("r", &["i"]), step("p", &[]), step("i", &["p"])];
        assert!(find_cycle(&steps).is_none());
        assert_eq!(topo_order(&steps), ["p", "i", "r"]);
    }
}
