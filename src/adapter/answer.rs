//! A profile's `[answer]` section: how the answer of a turn is found in
//! what a screen agent drew for it (`reins answer`, the `answer` of
//! `task_complete`).
//!
//! The host keeps the rows that scroll off the screen from the moment a
//! message is typed until its turn ends; those rows and the final screen
//! are read top to bottom. The answer starts after the last row that
//! echoes the message (`echo`, holding the message's first words), in a
//! block that begins with a `start` marker (cut off) and goes on with rows
//! indented by `indent` columns (cut off) or blank; a row matching `end`,
//! or any other row, ends the block. Blocks whose first row matches `skip`
//! (tool calls) are not answers; rows matching `strip` (chrome) are
//! dropped wherever they are. The last answer block of the turn is its
//! answer. A profile without `start` markers takes every row after the echo
//! up to the first `end` row.

use regex::Regex;
use serde::Deserialize;

/// The `[answer]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnswerFile {
    /// The row that echoes the message (a prefix such as `^> `); the row
    /// must also hold the message's first words.
    echo: String,
    /// Rows that start an answer block; the match is cut from the row.
    #[serde(default)]
    start: Vec<String>,
    /// Block starts that are not answers (tool calls).
    #[serde(default)]
    skip: Vec<String>,
    /// Rows that end a block (the composer, a "worked for" line).
    #[serde(default)]
    end: Vec<String>,
    /// Chrome rows dropped wherever they are.
    #[serde(default)]
    strip: Vec<String>,
    /// Columns of indent the continuation rows of a block carry.
    #[serde(default)]
    indent: usize,
    #[serde(default, rename = "example")]
    examples: Vec<AnswerExample>,
}

/// An example: what the turn drew, the message, and the answer it holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnswerExample {
    pub(crate) message: String,
    pub(crate) screen: String,
    /// The answer found (absent: none is found).
    #[serde(default)]
    pub(crate) answer: Option<String>,
}

/// The compiled `[answer]` section.
#[derive(Debug, Clone)]
pub(crate) struct AnswerSpec {
    echo: Regex,
    start: Vec<Regex>,
    skip: Vec<Regex>,
    end: Vec<Regex>,
    strip: Vec<Regex>,
    indent: usize,
    pub(crate) examples: Vec<AnswerExample>,
    /// The section as written, for `adapters explain`.
    pub(crate) summary: Vec<String>,
}

/// How the answer was found in the rows: for `adapters explain`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct AnswerReport {
    /// The row (0-based) that echoes the message, if one was found.
    pub(crate) echo_row: Option<usize>,
    /// The rows of the answer block (first, last), if one was found.
    pub(crate) rows: Option<(usize, usize)>,
    pub(crate) answer: Option<String>,
}

fn compile(list: &[String], what: &str) -> Result<Vec<Regex>, String> {
    list.iter().map(|re| compile_one(re, what)).collect()
}

fn compile_one(re: &str, what: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| format!("answer.{what} {re:?}: {err}"))
}

impl AnswerFile {
    pub(crate) fn compile(self) -> Result<AnswerSpec, String> {
        if self.examples.is_empty() {
            return Err("[answer] needs at least one [[answer.example]]".into());
        }
        let list = |l: &[String]| match l.len() {
            0 => "none".to_string(),
            _ => l.iter().map(|r| format!("'{r}'")).collect::<Vec<_>>().join(", "),
        };
        let summary = vec![
            format!("echo:   '{}' (the row that echoes the message)", self.echo),
            format!("start:  {} (a block of the answer begins; marker cut)", list(&self.start)),
            format!("skip:   {} (blocks that are not the answer)", list(&self.skip)),
            format!("end:    {} (rows that end a block)", list(&self.end)),
            format!("strip:  {} (chrome, dropped)", list(&self.strip)),
            format!("indent: {} (continuation rows; cut)", self.indent),
        ];
        Ok(AnswerSpec {
            echo: compile_one(&self.echo, "echo")?,
            start: compile(&self.start, "start")?,
            skip: compile(&self.skip, "skip")?,
            end: compile(&self.end, "end")?,
            strip: compile(&self.strip, "strip")?,
            indent: self.indent,
            examples: self.examples,
            summary,
        })
    }
}

/// The first words of a message, as an echo row shows them: its first
/// non-blank line, whitespace runs made one space, at most 24 characters.
fn message_key(message: &str) -> String {
    let line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    words.join(" ").chars().take(24).collect()
}

fn squeeze(row: &str) -> String {
    row.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl AnswerSpec {
    /// The answer in `rows` (what the turn drew, top to bottom), for a turn
    /// opened by `message`.
    pub(crate) fn find(&self, rows: &[String], message: Option<&str>) -> Option<String> {
        self.explain(rows, message).answer
    }

    /// The answer and where it was found.
    pub(crate) fn explain(&self, rows: &[String], message: Option<&str>) -> AnswerReport {
        let rows: Vec<String> = rows.iter().map(|r| crate::screen::normalise_row(r)).collect();
        let key = message.map(message_key).filter(|k| !k.is_empty());
        let echo_row = rows.iter().rposition(|row| {
            self.echo.find(row).is_some_and(|m| match &key {
                Some(key) => squeeze(&row[m.end()..]).contains(key.as_str()),
                None => true,
            })
        });
        let from = echo_row.map_or(0, |e| e + 1);
        let mut blocks: Vec<(usize, usize, bool, Vec<String>)> = Vec::new();
        let mut open = false;
        for (i, row) in rows.iter().enumerate().skip(from) {
            if self.strip.iter().any(|re| re.is_match(row)) {
                continue;
            }
            if self.end.iter().any(|re| re.is_match(row)) {
                open = false;
                continue;
            }
            let marker = self.start.iter().find_map(|re| re.find(row));
            if let Some(m) = marker {
                let skip = self.skip.iter().any(|re| re.is_match(row));
                blocks.push((i, i, skip, vec![row[m.end()..].to_string()]));
                open = true;
                continue;
            }
            if self.start.is_empty() && blocks.is_empty() {
                blocks.push((i, i, false, Vec::new()));
                open = true;
            }
            let indented =
                row.len() >= self.indent && row.bytes().take(self.indent).all(|b| b == b' ');
            let Some(block) = blocks.last_mut().filter(|_| open) else { continue };
            if row.is_empty() {
                block.3.push(String::new());
            } else if indented || self.start.is_empty() {
                block.1 = i;
                let cut = if indented { self.indent } else { 0 };
                block.3.push(row[cut..].to_string());
                continue;
            } else {
                open = false;
            }
        }
        let Some((first, last, _, lines)) = blocks.into_iter().rev().find(|b| !b.2) else {
            return AnswerReport { echo_row, rows: None, answer: None };
        };
        let text = lines.join("\n").trim_matches('\n').trim_end().to_string();
        let answer = (!text.trim().is_empty()).then_some(text);
        AnswerReport { echo_row, rows: Some((first, last)), answer }
    }

    /// Checks the examples; one message per problem.
    pub(crate) fn check_examples(&self, profile: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, ex) in self.examples.iter().enumerate() {
            let rows: Vec<String> = ex.screen.lines().map(str::to_string).collect();
            let got = self.find(&rows, Some(&ex.message));
            if got != ex.answer {
                problems.push(format!(
                    "{profile} (answer): example {} finds {got:?}, expected {:?}:\n{}",
                    i + 1,
                    ex.answer,
                    ex.screen
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> AnswerSpec {
        toml::from_str::<AnswerFile>(toml_text).unwrap().compile().unwrap()
    }

    fn rows(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    const CLAUDE_LIKE: &str = r#"
echo = '^❯ '
start = ['^● ']
skip = ['^● [A-Z][A-Za-z]*\(']
end = ['^✻ ', '^─{10,}']
indent = 2
[[example]]
message = "hi"
screen = "❯ hi\n● yes"
answer = "yes"
"#;

    #[test]
    fn the_last_text_block_after_the_echo_is_the_answer() {
        let s = spec(CLAUDE_LIKE);
        let screen = rows(
            "● old answer\n❯ fix the bug\n  in main\n● Let me look.\n● Bash(ls)\n  ⎿  a.rs\n\n● Fixed it.\n\n  Second paragraph\n  more.\n\n✻ Worked for 2s\n──────────────\n❯ \n──────────────",
        );
        assert_eq!(
            s.find(&screen, Some("fix the bug\nin main")).as_deref(),
            Some("Fixed it.\n\nSecond paragraph\nmore.")
        );
    }

    #[test]
    fn an_answer_quoting_the_message_is_not_the_echo() {
        let s = spec(CLAUDE_LIKE);
        let screen = rows("❯ go\n● ❯ go was said\n✻ Worked");
        assert_eq!(s.find(&screen, Some("go")).as_deref(), Some("❯ go was said"));
    }

    #[test]
    fn no_block_no_answer() {
        let s = spec(CLAUDE_LIKE);
        assert_eq!(s.find(&rows("❯ go\n● Bash(x)\n✻ Worked"), Some("go")), None);
        assert_eq!(s.find(&rows(""), Some("go")), None);
    }

    #[test]
    fn without_start_markers_the_rows_after_the_echo_are_the_answer() {
        let s = spec(
            "echo = '^\\$ '\nend = ['^\\$ ?$']\n[[example]]\nmessage = \"m\"\nscreen = \"$ m\"\n",
        );
        assert_eq!(
            s.find(&rows("$ echo hi\nhi\nthere\n$"), Some("echo hi")).as_deref(),
            Some("hi\nthere")
        );
    }
}
