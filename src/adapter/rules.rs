//! The screen rule engine.
//!
//! A rule looks at one region of the screen (the last N non-empty lines, the
//! cursor's line, the window title, ...) and yields a state when its
//! matchers hold there. Regions keep rules honest: an agent quoting `[y/N]`
//! in its answer is not a dialog, because the dialog rule only reads the
//! bottom of the screen. When several rules match, the strongest evidence
//! wins: `blocked` > `busy` > `ready`; within a state, the higher priority.
//! No match means `unknown`: reins does not guess.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::screen::ScreenText;
use crate::state::{BlockedKind, Observed, State};

/// Which part of the screen a rule reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Region {
    /// Every visible row.
    Screen,
    /// The last N non-empty rows.
    LastLines(usize),
    /// The first N non-empty rows.
    FirstLines(usize),
    /// The row the cursor is on.
    CursorLine,
    /// The window title the agent set.
    Title,
}

/// One test on a region's text.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MatcherFile {
    /// The text contains this substring.
    Contains(String),
    /// The regex matches somewhere (multi-line mode: `^`/`$` match at each
    /// line).
    Regex(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Contains(String),
    Regex(Regex),
}

impl Matcher {
    fn compile(file: MatcherFile) -> Result<Matcher, String> {
        match file {
            MatcherFile::Contains(s) if s.is_empty() => Err("empty contains matcher".into()),
            MatcherFile::Contains(s) => Ok(Matcher::Contains(s)),
            MatcherFile::Regex(r) => regex::RegexBuilder::new(&r)
                .multi_line(true)
                .build()
                .map(Matcher::Regex)
                .map_err(|err| format!("bad regex {r:?}: {err}")),
        }
    }

    fn is_match(&self, text: &str) -> bool {
        match self {
            Matcher::Contains(s) => text.contains(s.as_str()),
            Matcher::Regex(r) => r.is_match(text),
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Contains(s) => format!("contains {s:?}"),
            Matcher::Regex(r) => format!("regex {:?}", r.as_str()),
        }
    }
}

/// An example screen a rule must (or must not) match; checked by the tests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Example {
    /// Whether the rule must match this screen.
    pub(crate) matches: bool,
    /// Screen text, one row per line.
    pub(crate) screen: String,
    /// Window title, for `title` rules.
    #[serde(default)]
    pub(crate) title: String,
}

/// Where to look and what must hold there: the part shared by state rules
/// and turn-outcome rules.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) region: Region,
    all: Vec<Matcher>,
    any: Vec<Matcher>,
    not: Vec<Matcher>,
}

impl Condition {
    fn compile(
        region: Region,
        all: Vec<MatcherFile>,
        any: Vec<MatcherFile>,
        not: Vec<MatcherFile>,
    ) -> Result<Condition, String> {
        if all.is_empty() && any.is_empty() {
            return Err("needs at least one `all` or `any` matcher".into());
        }
        if matches!(region, Region::LastLines(0) | Region::FirstLines(0)) {
            return Err("a region of 0 lines never matches".into());
        }
        let compile = |v: Vec<MatcherFile>| -> Result<Vec<Matcher>, String> {
            v.into_iter().map(Matcher::compile).collect()
        };
        Ok(Condition { region, all: compile(all)?, any: compile(any)?, not: compile(not)? })
    }

    /// The rows of `screen` this condition reads.
    pub(crate) fn region_rows(&self, screen: &ScreenText) -> Vec<String> {
        let rows = screen.matching_rows();
        let non_empty = |rows: Vec<String>| rows.into_iter().filter(|r| !r.trim().is_empty());
        match &self.region {
            Region::Screen => rows,
            Region::LastLines(n) => {
                let rows: Vec<String> = non_empty(rows).collect();
                rows[rows.len().saturating_sub(*n)..].to_vec()
            }
            Region::FirstLines(n) => non_empty(rows).take(*n).collect(),
            Region::CursorLine => rows.into_iter().nth(screen.cursor_row).into_iter().collect(),
            Region::Title => vec![screen.title.clone()],
        }
    }

    pub(crate) fn matches(&self, screen: &ScreenText) -> bool {
        let text = self.region_rows(screen).join("\n");
        self.all.iter().all(|m| m.is_match(&text))
            && (self.any.is_empty() || self.any.iter().any(|m| m.is_match(&text)))
            && !self.not.iter().any(|m| m.is_match(&text))
    }

    /// One line per matcher: `✓ all: contains "x"` / `✗ not: ...`.
    fn checks(&self, screen: &ScreenText) -> Vec<String> {
        let text = self.region_rows(screen).join("\n");
        let mut checks = Vec::new();
        let mut line = |group: &str, m: &Matcher, ok: bool| {
            checks.push(format!("{} {group}: {}", if ok { "✓" } else { "✗" }, m.describe()));
        };
        for m in &self.all {
            line("all", m, m.is_match(&text));
        }
        for m in &self.any {
            line("any", m, m.is_match(&text));
        }
        for m in &self.not {
            line("not", m, !m.is_match(&text));
        }
        checks
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    name: String,
    state: State,
    #[serde(default)]
    kind: Option<BlockedKind>,
    #[serde(default)]
    priority: i32,
    region: Region,
    #[serde(default)]
    all: Vec<MatcherFile>,
    #[serde(default)]
    any: Vec<MatcherFile>,
    #[serde(default)]
    not: Vec<MatcherFile>,
    #[serde(default, rename = "example")]
    examples: Vec<Example>,
}

/// A compiled state rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) observed: Observed,
    pub(crate) priority: i32,
    pub(crate) condition: Condition,
    pub(crate) examples: Vec<Example>,
}

/// The result of classifying a screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Classification {
    pub(crate) observed: Observed,
    /// The rule that decided, if any did.
    pub(crate) rule: Option<String>,
}

/// How one rule fared on one screen (for `adapters explain`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleReport {
    pub(crate) rule: String,
    pub(crate) state: String,
    pub(crate) matched: bool,
    pub(crate) region: Vec<String>,
    /// One line per matcher: `✓ all: contains "x"` / `✗ not: ...`.
    pub(crate) checks: Vec<String>,
}

fn rank(state: State) -> u8 {
    match state {
        State::Blocked => 3,
        State::Busy => 2,
        State::Ready => 1,
        _ => 0,
    }
}

impl Rule {
    pub(crate) fn compile(file: RuleFile) -> Result<Rule, String> {
        let ctx = |e: String| format!("rule {:?}: {e}", file.name);
        match (file.state, file.kind) {
            (State::Blocked, None) => {
                return Err(ctx("a blocked rule needs a kind (approval, trust, dialog, auth, \
                                rate_limit)"
                    .into()));
            }
            (State::Blocked, Some(BlockedKind::Draft)) => {
                return Err(ctx("`draft` is a kind of ready, not of blocked".into()));
            }
            (State::Blocked, Some(_))
            | (State::Ready, None | Some(BlockedKind::Draft))
            | (State::Busy, None) => {}
            (State::Ready, Some(_)) => {
                return Err(ctx("a ready rule's only kind is `draft`".into()));
            }
            (State::Busy, Some(_)) => {
                return Err(ctx("only blocked rules and ready{draft} rules have a kind".into()));
            }
            (other, _) => {
                return Err(ctx(format!("rules yield ready, busy or blocked, not {other}")));
            }
        }
        let condition =
            Condition::compile(file.region, file.all, file.any, file.not).map_err(ctx)?;
        Ok(Rule {
            observed: Observed { state: file.state, kind: file.kind },
            priority: file.priority,
            condition,
            examples: file.examples,
            name: file.name,
        })
    }

    pub(crate) fn matches(&self, screen: &ScreenText) -> bool {
        self.condition.matches(screen)
    }

    fn report(&self, screen: &ScreenText) -> RuleReport {
        RuleReport {
            rule: self.name.clone(),
            state: self.observed.to_string(),
            matched: self.matches(screen),
            region: self.condition.region_rows(screen),
            checks: self.condition.checks(screen),
        }
    }
}

/// How a finished turn went, as far as a screen can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TurnStatus {
    Completed,
    Failed,
    Interrupted,
}

impl TurnStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TurnStatus::Completed => "completed",
            TurnStatus::Failed => "failed",
            TurnStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutcomeFile {
    name: String,
    status: TurnStatus,
    region: Region,
    #[serde(default)]
    all: Vec<MatcherFile>,
    #[serde(default)]
    any: Vec<MatcherFile>,
    #[serde(default)]
    not: Vec<MatcherFile>,
    #[serde(default, rename = "example")]
    examples: Vec<Example>,
}

/// A rule read when a turn ends: which status the screen shows.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) name: String,
    pub(crate) status: TurnStatus,
    pub(crate) condition: Condition,
    pub(crate) examples: Vec<Example>,
}

impl Outcome {
    pub(crate) fn compile(file: OutcomeFile) -> Result<Outcome, String> {
        let ctx = |e: String| format!("outcome {:?}: {e}", file.name);
        if file.status == TurnStatus::Completed {
            return Err(ctx("`completed` is what a turn is when no outcome rule matches".into()));
        }
        let condition =
            Condition::compile(file.region, file.all, file.any, file.not).map_err(ctx)?;
        Ok(Outcome { name: file.name, status: file.status, condition, examples: file.examples })
    }
}

/// When a usage rule reads the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UsageWhen {
    /// When a turn ends.
    TurnEnd,
    /// When the agent has exited (its last screen).
    Exit,
}

/// An example for a usage rule: a screen and what must be read from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageExample {
    pub(crate) screen: String,
    /// Field → value as text; empty means the rule must not match.
    #[serde(default)]
    pub(crate) expect: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageFile {
    name: String,
    when: UsageWhen,
    region: Region,
    /// Named groups: input_tokens, output_tokens, cached_tokens,
    /// reasoning_tokens, total_tokens, agent_session_id, duration_s.
    regex: String,
    /// Add up the numbers of every match (one row per model, say).
    #[serde(default)]
    sum: bool,
    #[serde(default, rename = "example")]
    examples: Vec<UsageExample>,
}

/// Reads token counts and the like from where a CLI prints them.
#[derive(Debug, Clone)]
pub(crate) struct UsageRule {
    pub(crate) name: String,
    pub(crate) when: UsageWhen,
    region: Condition,
    regex: Regex,
    sum: bool,
    pub(crate) examples: Vec<UsageExample>,
}

/// The usage fields reins knows; anything else in a rule is an error.
pub(crate) const USAGE_FIELDS: [&str; 7] = [
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_tokens",
    "agent_session_id",
    "duration_s",
];

impl UsageRule {
    pub(crate) fn compile(file: UsageFile) -> Result<UsageRule, String> {
        let ctx = |e: String| format!("usage {:?}: {e}", file.name);
        let regex = regex::RegexBuilder::new(&file.regex)
            .multi_line(true)
            .build()
            .map_err(|err| ctx(format!("bad regex: {err}")))?;
        for name in regex.capture_names().flatten() {
            if !USAGE_FIELDS.contains(&name) {
                return Err(ctx(format!(
                    "unknown field {name:?}; use {}",
                    USAGE_FIELDS.join(", ")
                )));
            }
        }
        // The region is read with a matcher that always holds; only its
        // rows matter.
        let region = Condition::compile(
            file.region,
            vec![MatcherFile::Regex(String::new())],
            vec![],
            vec![],
        )
        .map_err(ctx)?;
        Ok(UsageRule {
            name: file.name,
            when: file.when,
            region,
            regex,
            sum: file.sum,
            examples: file.examples,
        })
    }

    /// The fields this rule reads from `screen` (empty if it does not match).
    pub(crate) fn read(&self, screen: &ScreenText) -> std::collections::BTreeMap<String, String> {
        let text = self.region.region_rows(screen).join("\n");
        let mut out: std::collections::BTreeMap<String, String> = Default::default();
        for caps in self.regex.captures_iter(&text) {
            for name in self.regex.capture_names().flatten() {
                let Some(m) = caps.name(name) else { continue };
                let value = m.as_str().replace(',', "");
                match out.get(name) {
                    Some(prev) if self.sum => {
                        let total =
                            prev.parse::<u64>().unwrap_or(0) + value.parse::<u64>().unwrap_or(0);
                        out.insert(name.to_string(), total.to_string());
                    }
                    Some(_) => {}
                    None => {
                        out.insert(name.to_string(), value);
                    }
                }
            }
            if !self.sum {
                break;
            }
        }
        out
    }
}

/// What the usage rules for `when` read from a screen, merged (the first
/// rule to give a field wins), with the names of the rules that matched.
pub(crate) fn read_usage(
    rules: &[UsageRule],
    when: UsageWhen,
    screen: &ScreenText,
) -> Option<(std::collections::BTreeMap<String, String>, Vec<String>)> {
    let mut fields = std::collections::BTreeMap::new();
    let mut sources = Vec::new();
    for rule in rules.iter().filter(|r| r.when == when) {
        let read = rule.read(screen);
        if read.is_empty() {
            continue;
        }
        sources.push(rule.name.clone());
        for (k, v) in read {
            fields.entry(k).or_insert(v);
        }
    }
    (!fields.is_empty()).then_some((fields, sources))
}

/// The status of a turn that just ended: the first outcome rule that
/// matches the screen, else `completed`.
pub(crate) fn turn_status(
    outcomes: &[Outcome],
    screen: &ScreenText,
) -> (TurnStatus, Option<String>) {
    outcomes
        .iter()
        .find(|o| o.condition.matches(screen))
        .map_or((TurnStatus::Completed, None), |o| (o.status, Some(o.name.clone())))
}

/// Classifies a screen with a profile's rules.
pub(crate) fn classify(rules: &[Rule], screen: &ScreenText) -> Classification {
    rules
        .iter()
        .filter(|r| r.matches(screen))
        .max_by_key(|r| (rank(r.observed.state), r.priority))
        .map(|r| Classification { observed: r.observed, rule: Some(r.name.clone()) })
        .unwrap_or(Classification { observed: Observed::plain(State::Unknown), rule: None })
}

/// Every rule's verdict on a screen, in evaluation order.
pub(crate) fn explain(rules: &[Rule], screen: &ScreenText) -> Vec<RuleReport> {
    rules.iter().map(|r| r.report(screen)).collect()
}

impl crate::adapter::Profile {
    /// Classifies a screen with this profile's rules.
    pub(crate) fn classify(&self, screen: &ScreenText) -> Classification {
        classify(&self.rules, screen)
    }

    /// Every rule's verdict on a screen.
    pub(crate) fn explain(&self, screen: &ScreenText) -> Vec<RuleReport> {
        explain(&self.rules, screen)
    }

    /// Checks every rule against its example screens (DESIGN §2: each rule
    /// has at least one screen it must match and one it must not). Returns
    /// one message per problem; empty means the profile is consistent.
    pub(crate) fn check_examples(&self) -> Vec<String> {
        let rules = self.rules.iter().map(|r| ("rule", &r.name, &r.condition, &r.examples));
        let outcomes =
            self.outcomes.iter().map(|o| ("outcome", &o.name, &o.condition, &o.examples));
        let mut problems = Vec::new();
        for (what, name, condition, examples) in rules.chain(outcomes) {
            let who = format!("{}/{name} ({what})", self.name);
            if !examples.iter().any(|e| e.matches) {
                problems.push(format!("{who}: needs an example screen it matches"));
            }
            if !examples.iter().any(|e| !e.matches) {
                problems.push(format!("{who}: needs an example screen it does not match"));
            }
            for (i, ex) in examples.iter().enumerate() {
                let mut screen = ScreenText::from_text(&ex.screen);
                screen.title = ex.title.clone();
                if condition.matches(&screen) != ex.matches {
                    problems.push(format!(
                        "{who}: example {} should {}match:\n{}",
                        i + 1,
                        if ex.matches { "" } else { "not " },
                        ex.screen
                    ));
                }
            }
        }
        if let Some(answer) = &self.answer {
            problems.extend(answer.check_examples(&self.name));
        }
        for rule in &self.usage {
            let who = format!("{}/{} (usage)", self.name, rule.name);
            if rule.examples.is_empty() {
                problems.push(format!("{who}: needs an example screen"));
            }
            for (i, ex) in rule.examples.iter().enumerate() {
                let got = rule.read(&ScreenText::from_text(&ex.screen));
                if got != ex.expect {
                    problems.push(format!(
                        "{who}: example {} reads {got:?}, expected {:?}",
                        i + 1,
                        ex.expect
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::profile::{Profile, ProfileSource};

    fn profile(rules: &str) -> Profile {
        let text = format!("name = \"t\"\nsummary = \"s\"\n[launch]\ncommand = [\"x\"]\n{rules}");
        Profile::parse(&text, ProfileSource::Builtin).unwrap()
    }

    const RULES: &str = r#"
[approve]
allow = [{ text = "y" }]
deny = [{ text = "n" }]

[[rule]]
name = "dialog"
state = "blocked"
kind = "approval"
region = { last_lines = 2 }
all = [{ contains = "[y/n]" }]

[[rule]]
name = "busy"
state = "busy"
region = { last_lines = 3 }
all = [{ contains = "esc to interrupt" }]

[[rule]]
name = "prompt"
state = "ready"
region = "cursor_line"
all = [{ regex = "^> $|^>$" }]
not = [{ contains = "esc" }]
"#;

    #[test]
    fn strongest_evidence_wins() {
        let p = profile(RULES);
        let busy_with_dialog = ScreenText::from_text("Working (esc to interrupt)\nAllow? [y/n]\n");
        let c = p.classify(&busy_with_dialog);
        assert_eq!(c.observed.to_string(), "blocked{approval}");
        assert_eq!(c.rule.as_deref(), Some("dialog"));
    }

    #[test]
    fn rules_only_look_inside_their_region() {
        let p = profile(RULES);
        // The agent quotes "[y/n]" in its answer, far above the bottom lines.
        let s = ScreenText::from_text("answer: type [y/n] to confirm\nline\nline\nmore\n>\n");
        let c = p.classify(&s);
        assert_eq!(c.observed, Observed::plain(State::Ready));
    }

    #[test]
    fn nothing_matching_is_unknown() {
        let p = profile(RULES);
        let c = p.classify(&ScreenText::from_text("compiling...\n"));
        assert_eq!(c, Classification { observed: Observed::plain(State::Unknown), rule: None });
    }

    #[test]
    fn explain_reports_each_matcher() {
        let p = profile(RULES);
        let s = ScreenText::from_text("> \n");
        let report = p.explain(&s);
        let prompt = report.iter().find(|r| r.rule == "prompt").unwrap();
        assert!(prompt.matched);
        assert_eq!(prompt.checks, [r#"✓ all: regex "^> $|^>$""#, r#"✓ not: contains "esc""#]);
    }

    #[test]
    fn invalid_rules_are_refused_with_the_rule_name() {
        let bad = [
            ("state = \"blocked\"", "needs a kind"),
            ("state = \"busy\"\nkind = \"approval\"", "only blocked"),
            ("state = \"exited\"", "rules yield"),
        ];
        for (state, why) in bad {
            let text = format!(
                "name = \"t\"\nsummary = \"s\"\n[launch]\ncommand = [\"x\"]\n[[rule]]\nname = \
                 \"r1\"\n{state}\nregion = \"screen\"\nall = [{{ contains = \"x\" }}]\n"
            );
            let err = Profile::parse(&text, ProfileSource::Builtin).unwrap_err();
            assert!(err.contains("r1") && err.contains(why), "{err}");
        }
    }

    /// Every rule of every built-in profile matches the example screens it
    /// claims to match and no others. A new profile is covered by adding
    /// its TOML file.
    #[test]
    fn builtin_rules_agree_with_their_examples() {
        for profile in crate::adapter::list().unwrap() {
            if profile.source == ProfileSource::Builtin {
                let problems = profile.check_examples();
                assert!(problems.is_empty(), "{}", problems.join("\n\n"));
            }
        }
    }

    #[test]
    fn example_checks_catch_a_wrong_example() {
        let p = profile(
            r#"
[[rule]]
name = "busy"
state = "busy"
region = "screen"
all = [{ contains = "working" }]
[[rule.example]]
matches = true
screen = "idle"
"#,
        );
        let problems = p.check_examples();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("does not match"));
        assert!(problems[1].contains("example 1 should match"));
    }
}
