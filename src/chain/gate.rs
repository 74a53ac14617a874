//! The gate: at the end of a batch with failed tasks, what happens to each
//! of them — `retry` (run again, the brief carrying the failure and a
//! narrower scope), `skip` (give up on it), or `rebatch` (run again in a
//! smaller batch: fewer tasks at once for the rest of the step).
//!
//! The rules decide by default, deterministically; `--gate-agent A` asks an
//! agent for `{"decisions": [{"task", "action", "brief_note"}]}` and falls
//! back to the rules when the answer is missing, late or does not fit the
//! schema. Whoever decides, a task at its `max_tries` is skipped: a chain
//! always ends. No failure, no gate.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a failed run left on disk: a failed check's output, or the
/// verifier's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Evidence {
    /// `check` or `verdict`.
    pub(crate) kind: String,
    /// The check (`cmd:...`) or the verifier's session.
    pub(crate) what: String,
    /// Where the whole of it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    /// Its last lines (at most 2000 characters).
    pub(crate) tail: String,
}

/// The last lines of `text`, at most 2000 characters.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let last = lines[lines.len().saturating_sub(20)..].join("\n");
    let skip = last.chars().count().saturating_sub(2000);
    last.chars().skip(skip).collect()
}

/// A note the gate routes to a pending task.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Context {
    pub(crate) task: String,
    pub(crate) note: String,
}

/// A gate agent's answer, checked.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) decisions: Vec<Decision>,
    pub(crate) analysis: Option<String>,
    pub(crate) context: Vec<Context>,
}

/// What else the gate is shown: the batch's accepted outputs and the
/// tasks still to run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Surroundings {
    /// Accepted tasks of the batch and their outputs (cut).
    pub(crate) accepted: Vec<Accepted>,
    /// Tasks not run yet: those a `context` note may go to.
    pub(crate) pending: Vec<String>,
}

/// An accepted task of the batch.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Accepted {
    pub(crate) task: String,
    pub(crate) output: String,
}

/// What the gate does with one failed task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Retry,
    Skip,
    Rebatch,
}

/// A decision about one task.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Decision {
    pub(crate) task: String,
    pub(crate) action: Action,
    /// Added to the task's next brief.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) brief_note: Option<String>,
    /// Why (the rule, or "the gate agent said so").
    pub(crate) why: String,
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum By {
    Rules,
    Agent,
    /// The agent was asked, its answer was unusable, the rules decided.
    Fallback,
}

/// What the gate knows of a failed task.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failed {
    pub(crate) task: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) item: Option<String>,
    /// Runs so far, and how many it may have.
    pub(crate) runs: u32,
    pub(crate) max_tries: u32,
    /// check, verdict, timeout, start, crash or other.
    pub(crate) failure: String,
    pub(crate) reason: String,
    /// The failed checks' output and the verdict, paths and tails.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) evidence: Vec<Evidence>,
}

/// The kind of a failure, from the reason dispatch gave.
pub(crate) fn kind_of(result: &str, reason: &str) -> &'static str {
    if result == "rejected" {
        "verdict"
    } else if reason.starts_with("done check") {
        "check"
    } else if reason.contains("no task_complete within") || result == "timeout" {
        "timeout"
    } else if reason.contains("did not start") {
        "start"
    } else if reason.contains("session ended") {
        "crash"
    } else {
        "other"
    }
}

/// The note a retried task's next brief carries.
pub(crate) fn retry_note(f: &Failed, extra: Option<&str>) -> String {
    let mut note = format!(
        "Run {} of this task was not accepted: {}. Narrow your scope: do only what this task \
         asks, make the smallest change that passes the checks, and leave other tasks' work alone.",
        f.runs,
        f.reason.trim_end_matches('.')
    );
    if let Some(extra) = extra.filter(|e| !e.trim().is_empty()) {
        note.push_str(&format!(" Reviewer's note: {}", extra.trim()));
    }
    note
}

/// The default gate: skip a task at its max_tries; rebatch one that timed
/// out or did not start while others ran beside it (too much at once);
/// retry anything else.
pub(crate) fn rules(failed: &[Failed], width: u32) -> Vec<Decision> {
    failed
        .iter()
        .map(|f| {
            let (action, why) = if f.runs >= f.max_tries {
                (Action::Skip, format!("failed {} of {} allowed run(s)", f.runs, f.max_tries))
            } else if matches!(f.failure.as_str(), "timeout" | "start") && width > 1 {
                (Action::Rebatch, format!("{}: fewer tasks at once", f.failure))
            } else {
                (Action::Retry, format!("{} failure, run {} of {}", f.failure, f.runs, f.max_tries))
            };
            Decision {
                task: f.task.clone(),
                action,
                brief_note: (action != Action::Skip).then(|| retry_note(f, None)),
                why,
            }
        })
        .collect()
}

/// Validates a gate agent's answer: one decision for every failed task,
/// nothing else. A retry or rebatch of a task at its max_tries becomes a
/// skip (the answer stays valid).
pub(crate) fn validate(
    value: &Value,
    failed: &[Failed],
    pending: &[String],
) -> Result<Answer, String> {
    let obj = value.as_object().ok_or("the answer is not a JSON object")?;
    let list = match obj.get("decisions") {
        Some(Value::Array(list)) => list,
        Some(_) => return Err("\"decisions\" is not an array".into()),
        None => return Err("the answer has no \"decisions\"".into()),
    };
    let mut out: Vec<Decision> = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let d = d.as_object().ok_or(format!("decision {} is not an object", i + 1))?;
        let task = d
            .get("task")
            .and_then(Value::as_str)
            .ok_or(format!("decision {} has no \"task\" string", i + 1))?;
        let Some(f) = failed.iter().find(|f| f.task == task) else {
            return Err(format!("decision {} names task {task:?}, which did not fail", i + 1));
        };
        if out.iter().any(|o| o.task == task) {
            return Err(format!("task {task:?} has two decisions"));
        }
        let action = match d.get("action").and_then(Value::as_str) {
            Some("retry") => Action::Retry,
            Some("skip") => Action::Skip,
            Some("rebatch") => Action::Rebatch,
            Some(other) => {
                return Err(format!(
                    "decision {}: action {other:?} is not retry, skip or rebatch",
                    i + 1
                ));
            }
            None => return Err(format!("decision {} has no \"action\" string", i + 1)),
        };
        let note = match d.get("brief_note") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(format!("decision {}: \"brief_note\" is not a string", i + 1)),
        };
        let (action, why) = if action != Action::Skip && f.runs >= f.max_tries {
            (Action::Skip, format!("the agent said {action:?}, but the task is at max_tries"))
        } else {
            (action, "the gate agent decided".to_string())
        };
        out.push(Decision {
            task: task.to_string(),
            action,
            brief_note: (action != Action::Skip).then(|| retry_note(f, note.as_deref())),
            why,
        });
    }
    if let Some(missing) = failed.iter().find(|f| !out.iter().any(|o| o.task == f.task)) {
        return Err(format!("no decision for task {:?}", missing.task));
    }
    let analysis = match obj.get("analysis") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("\"analysis\" is not a string".into()),
    };
    let mut context = Vec::new();
    match obj.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, c) in list.iter().enumerate() {
                let task = c.get("task").and_then(Value::as_str);
                let note = c.get("note").and_then(Value::as_str);
                let (Some(task), Some(note)) = (task, note) else {
                    return Err(format!("context {} needs \"task\" and \"note\" strings", i + 1));
                };
                if !pending.iter().any(|p| p == task) {
                    return Err(format!(
                        "context {} names task {task:?}, which is not pending",
                        i + 1
                    ));
                }
                context.push(Context { task: task.to_string(), note: note.to_string() });
            }
        }
        Some(_) => return Err("\"context\" is not an array".into()),
    }
    Ok(Answer { decisions: out, analysis, context })
}

/// The gate agent's brief.
pub(crate) fn brief(
    chain: &str,
    step: &str,
    failed: &[Failed],
    around: &Surroundings,
    file: &str,
    key: &str,
) -> String {
    let list = serde_json::to_string_pretty(failed).unwrap_or_default();
    let around = serde_json::to_string_pretty(around).unwrap_or_default();
    format!(
        "You are the gate of the chain {chain:?}. In its step {step:?} these tasks failed \
         (runs: how often each ran; max_tries: how often it may; evidence: the failed checks' \
         output and the verdicts, with the files that hold all of it):\n{list}\n\n\
         The batch's accepted tasks and the tasks still to run:\n{around}\n\n\
         Read the evidence first. Decide for each failed task: \"retry\" (run it again; \
         brief_note tells the worker what to do differently), \"skip\" (give up on it), or \
         \"rebatch\" (run it again with fewer tasks at once). Change nothing yourself. Answer \
         with one JSON object {{\"analysis\": \"<what went wrong>\", \"decisions\": \
         [{{\"task\": \"<task>\", \"action\": \"retry|skip|rebatch\", \"brief_note\": \
         \"<note>\"}}], \"context\": [{{\"task\": \"<pending task>\", \"note\": \"<what it \
         should know>\"}}]}} with one decision per failed task (analysis and context are \
         optional), on a line of its own, and also write it to {file}.\n\
         End of brief (gate key {key})."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed(task: &str, runs: u32, failure: &str) -> Failed {
        Failed {
            task: task.into(),
            item: None,
            runs,
            max_tries: 2,
            failure: failure.into(),
            reason: "done check cmd:x failed: exit 1".into(),
            evidence: Vec::new(),
        }
    }

    #[test]
    fn rules_retry_once_then_skip_and_rebatch_contention() {
        let d = rules(
            &[failed("a", 1, "check"), failed("b", 2, "check"), failed("c", 1, "timeout")],
            2,
        );
        let actions: Vec<Action> = d.iter().map(|d| d.action).collect();
        assert_eq!(actions, [Action::Retry, Action::Skip, Action::Rebatch]);
        assert!(d[0].brief_note.as_deref().unwrap().contains("Narrow your scope"));
        assert!(d[1].brief_note.is_none());
        assert_eq!(rules(&[failed("c", 1, "timeout")], 1)[0].action, Action::Retry);
    }

    #[test]
    fn agent_answers_are_checked_against_the_failed_tasks() {
        let f = [failed("a", 1, "check"), failed("b", 2, "verdict")];
        let ok = json!({"decisions": [
            {"task": "a", "action": "retry", "brief_note": "only the parser"},
            {"task": "b", "action": "retry"}]});
        let d = validate(&ok, &f, &[]).unwrap().decisions;
        assert_eq!(d[0].action, Action::Retry);
        assert!(d[0].brief_note.as_deref().unwrap().ends_with("only the parser"));
        assert_eq!(d[1].action, Action::Skip, "b is at max_tries");
        for (bad, why) in [
            (json!([]), "not a JSON object"),
            (
                json!({"decisions": [{"task": "a", "action": "retry"}]}),
                "no decision for task \"b\"",
            ),
            (json!({"decisions": [{"task": "z", "action": "skip"}]}), "did not fail"),
            (json!({"decisions": [{"task": "a", "action": "redo"}]}), "not retry, skip"),
        ] {
            assert!(validate(&bad, &f, &[]).unwrap_err().contains(why), "{bad}");
        }
    }

    #[test]
    fn analysis_and_context_go_to_pending_tasks_only() {
        let f = [failed("a", 1, "check")];
        let pending = ["review".to_string()];
        let ok = json!({"analysis": "the parser", "decisions": [{"task": "a", "action": "skip"}],
            "context": [{"task": "review", "note": "a was skipped"}]});
        let answer = validate(&ok, &f, &pending).unwrap();
        assert_eq!(answer.analysis.as_deref(), Some("the parser"));
        assert_eq!(
            (answer.context[0].task.as_str(), answer.context[0].note.as_str()),
            ("review", "a was skipped")
        );
        let bad = json!({"decisions": [{"task": "a", "action": "skip"}],
            "context": [{"task": "a", "note": "x"}]});
        assert!(validate(&bad, &f, &pending).unwrap_err().contains("not pending"));
        assert_eq!(
            tail(&(1..=30).map(|i| i.to_string()).collect::<Vec<_>>().join("\n")).lines().next(),
            Some("11")
        );
    }
}
