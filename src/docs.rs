//! The guides and recipes built into the binary (`guides/`, `recipes/`),
//! and how a reader names one: by number, or by topic name matched exactly,
//! then as a prefix, then as a substring.
//!
//! Files are named `NN-topic.md`; `NN` orders them and numbers recipes, the
//! first `# ` line is the title. The build embeds every file it finds
//! (build.rs), and the docs test runs every command in them.

use crate::error::CliError;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_guides_agents.rs"));
    include!(concat!(env!("OUT_DIR"), "/builtin_recipes.rs"));
}

/// The getting-started guide for people (`reins guide`).
pub(crate) const GETTING_STARTED: &str = include_str!("../guides/getting-started.md");

/// One embedded document.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// Its number (the `NN` of `NN-topic.md`).
    pub(crate) number: u32,
    /// Its topic name (`topic` of `NN-topic.md`).
    pub(crate) name: &'static str,
    /// Its first `# ` heading.
    pub(crate) title: &'static str,
    /// Where it lives in the source tree.
    pub(crate) file: String,
    /// The Markdown.
    pub(crate) text: &'static str,
}

/// harnex's agent guides in its order (`guides/01_dispatch.md` …), which
/// `agents-guide N` follows when invoked as harnex.
const HARNEX_GUIDES: [&str; 5] = ["dispatch", "chain", "buddy", "monitoring", "naming"];

/// A set of documents a command serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shelf {
    /// `guides/agents/`: `reins agents-guide`.
    AgentGuides,
    /// `recipes/`: `reins recipes`.
    Recipes,
}

impl Shelf {
    /// The documents, in order.
    pub(crate) fn docs(self) -> Vec<Doc> {
        let (dir, files) = match self {
            Shelf::AgentGuides => ("guides/agents", builtin::AGENT_GUIDES),
            Shelf::Recipes => ("recipes", builtin::RECIPES),
        };
        files.iter().map(|(file, text)| parse(dir, file, text)).collect()
    }

    /// What one document is called in messages.
    fn noun(self) -> &'static str {
        match self {
            Shelf::AgentGuides => "topic",
            Shelf::Recipes => "recipe",
        }
    }

    /// The command that shows them.
    pub(crate) fn command(self) -> String {
        let command = match self {
            Shelf::AgentGuides => "agents-guide",
            Shelf::Recipes => "recipes",
        };
        format!("{} {command}", crate::compat::program())
    }

    /// Finds the document `query` names: its number, else its name exactly,
    /// else the one name it starts, else the one name containing it.
    pub(crate) fn find(self, query: &str) -> Result<Doc, CliError> {
        let docs = self.docs();
        // harnex's names too: `fire_and_watch`, `01_dispatch`.
        let query = query.trim().to_ascii_lowercase().replace('_', "-");
        let query = match query.split_once('-') {
            Some((n, name)) if n.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() => {
                name.to_string()
            }
            _ => query,
        };
        if let Ok(n) = query.parse::<u32>() {
            // Invoked as harnex, its numbers: its guides start at dispatch.
            let harnex = match self {
                Shelf::AgentGuides if crate::compat::is_harnex() => {
                    HARNEX_GUIDES.get((n as usize).wrapping_sub(1)).copied()
                }
                _ => None,
            };
            let doc = match harnex {
                Some(name) => docs.iter().find(|d| d.name == name),
                None => docs.iter().find(|d| d.number == n),
            };
            if let Some(doc) = doc {
                return Ok(doc.clone());
            }
        }
        let tiers: [&dyn Fn(&Doc) -> bool; 3] =
            [&|d| d.name == query, &|d| d.name.starts_with(&query), &|d| d.name.contains(&query)];
        for matches in tiers {
            let found: Vec<&Doc> = docs.iter().filter(|d| matches(d)).collect();
            match found.as_slice() {
                [] => continue,
                [one] => return Ok((*one).clone()),
                many => {
                    let names: Vec<&str> = many.iter().map(|d| d.name).collect();
                    return Err(CliError::usage(format!(
                        "{} {query:?} is ambiguous: it matches {}",
                        self.noun(),
                        names.join(", ")
                    ))
                    .hint(format!("name one of them, or see `{}`", self.command())));
                }
            }
        }
        let names: Vec<&str> = docs.iter().map(|d| d.name).collect();
        Err(CliError::usage(format!("no {} {query:?}", self.noun())).hint(format!(
            "{}s: {}",
            self.noun(),
            names.join(", ")
        )))
    }
}

fn parse(dir: &str, file: &'static str, text: &'static str) -> Doc {
    let stem = file.trim_end_matches(".md");
    let (number, name) = match stem.split_once('-') {
        Some((n, name)) if n.chars().all(|c| c.is_ascii_digit()) => (n.parse().unwrap_or(0), name),
        _ => (0, stem),
    };
    let title = text.lines().find_map(|line| line.strip_prefix("# ")).map_or(name, str::trim);
    Doc { number, name, title, file: format!("{dir}/{file}"), text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_doc_is_numbered_named_and_titled_once() {
        for shelf in [Shelf::AgentGuides, Shelf::Recipes] {
            let docs = shelf.docs();
            assert!(!docs.is_empty(), "{shelf:?} has no documents");
            let mut numbers: Vec<u32> = docs.iter().map(|d| d.number).collect();
            numbers.dedup();
            assert_eq!(numbers.len(), docs.len(), "{shelf:?}: numbers must be distinct");
            for doc in &docs {
                assert!(doc.number > 0, "{}: name it NN-topic.md", doc.file);
                assert!(doc.text.starts_with("# "), "{}: start with a `# ` title", doc.file);
                assert!(
                    doc.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                    "{}: topic names are lowercase words joined by -",
                    doc.file
                );
            }
        }
        assert!(GETTING_STARTED.starts_with("# "));
    }

    #[test]
    fn lookup_is_number_then_exact_then_prefix_then_substring() {
        let shelf = Shelf::AgentGuides;
        let first = &shelf.docs()[0];
        assert_eq!(shelf.find(&first.number.to_string()).unwrap().name, first.name);
        assert_eq!(shelf.find(first.name).unwrap().name, first.name);
        assert_eq!(shelf.find(&first.name[..3]).unwrap().name, first.name);
        assert_eq!(shelf.find("CHAIN").unwrap().name, "chain");
        assert_eq!(shelf.find("onitor").unwrap().name, "monitoring");
        let unknown = shelf.find("no-such-topic").unwrap_err();
        assert_eq!(unknown.code, crate::error::code::USAGE);
        assert!(unknown.hint.unwrap().contains("dispatch"));
    }
}
