//! Routing rules: `[[route]]` tables of config.toml that send a task to
//! the agents that suit it, scored on the task's text and labels.
//!
//! ```toml
//! [[route]]
//! when = ["(?i)flaky|failing test", "label:tests"]   # regexes on the task; label:NAME
//! prefer = ["strong", "cheap"]                      # agents, best first
//! weight = 2                                        # default 1
//!
//! [[route]]
//! when = ["label:feature"]
//! ladder = ["local-qwen", "strong"]                 # a routing chain instead
//! verifier = "reviewer"                              # checks its answers
//! ```
//!
//! A rule's score is its weight times how many of its `when` patterns
//! match. The rules that score are taken best first (ties: file order);
//! their `prefer` agents come first, in that order, and the rest of the
//! pool follows in its round-robin order, so an unavailable preferred agent
//! still fails over to the others. When the best-scoring rule has a
//! `ladder`, the task climbs that ladder instead (one attempt per rung),
//! with the rule's `verifier` unless the caller named one.

use regex::Regex;
use serde::Deserialize;

/// One `[[route]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteTable {
    when: Vec<String>,
    #[serde(default)]
    prefer: Vec<String>,
    weight: Option<u32>,
    /// Rungs `AGENT[:MODEL]`: a routing chain (instead of `prefer`).
    #[serde(default)]
    ladder: Vec<String>,
    /// The verifier of tasks this rule routes.
    verifier: Option<String>,
}

/// What a rule looks for.
#[derive(Debug, Clone)]
enum Matcher {
    /// A regex on the task's text.
    Text(Regex),
    /// `label:NAME`: the task carries that label.
    Label(String),
}

impl Matcher {
    fn matches(&self, task: &str, labels: &[String]) -> bool {
        match self {
            Matcher::Text(re) => re.is_match(task),
            Matcher::Label(label) => labels.iter().any(|l| l == label),
        }
    }

    fn shown(&self) -> String {
        match self {
            Matcher::Text(re) => re.as_str().to_string(),
            Matcher::Label(label) => format!("label:{label}"),
        }
    }
}

/// A validated `[[route]]`.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Its line in the config file.
    pub(crate) line: usize,
    when: Vec<Matcher>,
    pub(crate) prefer: Vec<String>,
    weight: u32,
    /// Its routing chain, when it has one.
    pub(crate) ladder: Vec<String>,
    pub(crate) verifier: Option<String>,
}

impl Rule {
    /// Checks a table; `known` are the agents' names. The error says what
    /// is wrong, without the place (the caller adds `file:line`).
    pub(crate) fn new(table: RouteTable, line: usize, known: &[&str]) -> Result<Rule, String> {
        if table.when.is_empty() {
            return Err("[[route]]: when is empty: give a regex on the task or label:NAME".into());
        }
        match (table.prefer.is_empty(), table.ladder.is_empty()) {
            (true, true) => {
                return Err("[[route]]: prefer is empty: name the agents for such tasks \
                            (or a ladder of them)"
                    .into());
            }
            (false, false) => {
                return Err("[[route]]: give prefer or ladder, not both".into());
            }
            _ => {}
        }
        if table.weight == Some(0) {
            return Err("[[route]]: weight must be at least 1".into());
        }
        let when = table
            .when
            .iter()
            .map(|w| match w.strip_prefix("label:") {
                Some("") => Err("[[route]]: `label:` needs a label name".to_string()),
                Some(label) => Ok(Matcher::Label(label.to_string())),
                None => Regex::new(w)
                    .map(Matcher::Text)
                    .map_err(|err| format!("[[route]]: when {w:?} is not a regex: {err}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(unknown) = table.prefer.iter().find(|p| !known.contains(&p.as_str())) {
            return Err(format!(
                "[[route]]: prefer names {unknown:?}, which is no agent (known: {})",
                known.join(", ")
            ));
        }
        for rung in &table.ladder {
            let name = crate::dispatch::split_rung(rung).map_err(|e| format!("[[route]]: {e}"))?.0;
            if !known.contains(&name) {
                return Err(format!(
                    "[[route]]: ladder names {name:?}, which is no agent (known: {})",
                    known.join(", ")
                ));
            }
        }
        if let Some(v) = table.verifier.as_deref().filter(|v| !known.contains(v)) {
            return Err(format!(
                "[[route]]: verifier {v:?} is no agent (known: {})",
                known.join(", ")
            ));
        }
        Ok(Rule {
            line,
            when,
            prefer: table.prefer,
            weight: table.weight.unwrap_or(1),
            ladder: table.ladder,
            verifier: table.verifier,
        })
    }

    fn score(&self, task: &str, labels: &[String]) -> (u32, Vec<String>) {
        let matched: Vec<String> =
            self.when.iter().filter(|m| m.matches(task, labels)).map(Matcher::shown).collect();
        (self.weight * matched.len() as u32, matched)
    }
}

/// Where the rules sent a task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Routed {
    /// Every pool agent, the rules' choices first.
    pub(crate) order: Vec<String>,
    /// Which rules matched, for the log: `config.toml:12 (score 2: a, b)`.
    pub(crate) why: String,
}

/// The routing chain for a task: the best-scoring matching rule (ties:
/// file order), when it has a ladder, with why.
pub(crate) fn chain<'a>(
    rules: &'a [Rule],
    task: &str,
    labels: &[String],
) -> Option<(&'a Rule, String)> {
    let mut best: Option<(u32, &Rule, Vec<String>)> = None;
    for rule in rules {
        let (score, matched) = rule.score(task, labels);
        if score > 0 && best.as_ref().is_none_or(|(b, ..)| score > *b) {
            best = Some((score, rule, matched));
        }
    }
    let (score, rule, matched) = best?;
    if rule.ladder.is_empty() {
        return None;
    }
    Some((rule, format!("rule at line {} (score {score}: {})", rule.line, matched.join(", "))))
}

/// Orders `pool` (agent names, in round-robin order) by the rules that
/// match `task` and `labels`; `None` when no rule matches.
pub(crate) fn route(
    rules: &[Rule],
    pool: &[String],
    task: &str,
    labels: &[String],
) -> Option<Routed> {
    let mut scored: Vec<(u32, usize, &Rule, Vec<String>)> = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let (score, matched) = rule.score(task, labels);
            (score, i, rule, matched)
        })
        .filter(|(score, ..)| *score > 0)
        .collect();
    if scored.is_empty() {
        return None;
    }
    scored.sort_by_key(|(score, i, ..)| (std::cmp::Reverse(*score), *i));
    let mut order: Vec<String> = Vec::new();
    for (_, _, rule, _) in &scored {
        for name in &rule.prefer {
            if !order.contains(name) {
                order.push(name.clone());
            }
        }
    }
    for name in pool {
        if !order.contains(name) {
            order.push(name.clone());
        }
    }
    let why = scored
        .iter()
        .map(|(score, _, rule, matched)| {
            format!("rule at line {} (score {score}: {})", rule.line, matched.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some(Routed { order, why })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(when: &[&str], prefer: &[&str], weight: Option<u32>, line: usize) -> Rule {
        let table = RouteTable {
            when: when.iter().map(|s| s.to_string()).collect(),
            prefer: prefer.iter().map(|s| s.to_string()).collect(),
            weight,
            ladder: Vec::new(),
            verifier: None,
        };
        Rule::new(table, line, &["cheap", "strong", "local"]).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_best_scoring_rules_come_first_then_the_pool() {
        let rules = [
            rule(&["(?i)docs?"], &["local"], None, 3),
            rule(&["(?i)test", "label:hard"], &["strong"], None, 7),
        ];
        let pool = names(&["cheap", "strong", "local"]);
        let routed = route(&rules, &pool, "fix the failing test and the docs", &names(&["hard"]));
        let routed = routed.unwrap();
        assert_eq!(routed.order, names(&["strong", "local", "cheap"]));
        assert_eq!(
            routed.why,
            "rule at line 7 (score 2: (?i)test, label:hard); rule at line 3 (score 1: (?i)docs?)"
        );
        // Weight counts; ties keep file order.
        let weighted =
            [rule(&["docs"], &["local"], Some(3), 3), rule(&["test"], &["strong"], None, 7)];
        assert_eq!(route(&weighted, &pool, "test docs", &[]).unwrap().order[0], "local");
        assert_eq!(route(&rules, &pool, "refactor", &[]), None);
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let bad = |when: &[&str], prefer: &[&str], weight| {
            let table = RouteTable {
                when: when.iter().map(|s| s.to_string()).collect(),
                prefer: prefer.iter().map(|s| s.to_string()).collect(),
                weight,
                ladder: Vec::new(),
                verifier: None,
            };
            Rule::new(table, 1, &["cheap"]).unwrap_err()
        };
        assert!(bad(&["("], &["cheap"], None).contains("is not a regex"));
        assert!(bad(&["x"], &["ghost"], None).contains("\"ghost\", which is no agent"));
        assert!(bad(&[], &["cheap"], None).contains("when is empty"));
        assert!(bad(&["x"], &[], None).contains("prefer is empty"));
        assert!(bad(&["label:"], &["cheap"], None).contains("needs a label name"));
        assert!(bad(&["x"], &["cheap"], Some(0)).contains("weight must be at least 1"));
    }

    #[test]
    fn the_best_rule_with_a_ladder_is_a_routing_chain() {
        let table = |when: &str, ladder: &[&str], verifier: Option<&str>| RouteTable {
            when: vec![when.to_string()],
            prefer: Vec::new(),
            weight: None,
            ladder: ladder.iter().map(|s| s.to_string()).collect(),
            verifier: verifier.map(str::to_string),
        };
        let known = ["cheap", "strong", "local"];
        let rules = [
            Rule::new(table("docs", &["local", "strong:opus"], Some("cheap")), 2, &known).unwrap(),
            rule(&["test"], &["strong"], Some(2), 5),
        ];
        let (rule, why) = chain(&rules, "fix the docs", &[]).unwrap();
        assert_eq!((rule.line, rule.verifier.as_deref()), (2, Some("cheap")));
        assert_eq!(why, "rule at line 2 (score 1: docs)");
        // A better-scoring rule without a ladder wins: no chain.
        assert!(chain(&rules, "fix the docs test", &[]).is_none());
        let bad = |t| Rule::new(t, 1, &known).unwrap_err();
        assert!(bad(table("x", &["ghost"], None)).contains("\"ghost\", which is no agent"));
        assert!(bad(table("x", &["local"], Some("ghost"))).contains("verifier \"ghost\""));
        let mut both = table("x", &["local"], None);
        both.prefer = vec!["cheap".into()];
        assert!(bad(both).contains("not both"));
    }
}
