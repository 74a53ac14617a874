//! `reins agents-guide`, `reins recipes` and `reins guide`: the embedded
//! documents, how they are listed and looked up, and the errors that list
//! what there is.

use std::path::PathBuf;

use crate::common::TestEnv;

fn read(path: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// `(name, file)` of the Markdown files in `dir`, sorted.
fn docs_in(dir: &str) -> Vec<(String, String)> {
    let mut files: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".md"))
            .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let name = f.trim_end_matches(".md").split_once('-').unwrap().1.to_string();
            (name, format!("{dir}/{f}"))
        })
        .collect()
}

#[test]
fn agents_guide_lists_every_topic_and_shows_each_as_written() {
    let env = TestEnv::new();
    let topics = docs_in("guides/agents");
    for name in ["basics", "dispatch", "chain", "buddy", "monitoring", "naming"] {
        assert!(topics.iter().any(|(n, _)| n == name), "no {name} topic");
    }
    for listing in [env.reins(&["agents-guide"]), env.reins(&["agents-guide", "list"])] {
        let listing = listing.ok().stdout;
        for (name, _) in &topics {
            assert!(listing.contains(&format!("  {name}  ")), "{name} not listed:\n{listing}");
        }
        assert!(listing.contains("Read one: reins agents-guide"), "{listing}");
    }
    for (name, file) in &topics {
        let shown = env.reins(&["agents-guide", name]).ok().stdout;
        assert_eq!(shown.trim_end(), read(file).trim_end(), "{name}");
        let via_show = env.reins(&["agents-guide", "show", name]).ok().stdout;
        assert_eq!(via_show, shown);
    }
}

#[test]
fn topics_are_found_by_number_name_prefix_then_substring() {
    let env = TestEnv::new();
    let title =
        |args: &[&str]| env.reins(args).ok().stdout.lines().next().unwrap_or_default().to_string();
    let chain = title(&["agents-guide", "chain"]);
    assert!(chain.starts_with("# Chain"), "{chain}");
    assert_eq!(title(&["agents-guide", "3"]), chain, "by number");
    assert_eq!(title(&["agents-guide", "03"]), chain, "by zero-padded number");
    assert_eq!(title(&["agents-guide", "ch"]), chain, "by prefix");
    assert_eq!(title(&["agents-guide", "CHAIN"]), chain, "case does not matter");
    assert!(title(&["agents-guide", "onitor"]).starts_with("# Monitoring"), "by substring");
    assert!(title(&["recipes", "show", "fan"]).starts_with("# Fan out"), "recipes too");
    assert!(title(&["recipes", "2"]).starts_with("# A chain of three"));
}

#[test]
fn an_unknown_or_ambiguous_topic_is_a_usage_error_that_lists_the_topics() {
    let env = TestEnv::new();
    let unknown = env.reins(&["agents-guide", "deploy"]).code(2);
    assert!(unknown.stdout.is_empty());
    assert!(unknown.stderr.contains("no topic \"deploy\""), "{}", unknown.stderr);
    for (name, _) in docs_in("guides/agents") {
        assert!(unknown.stderr.contains(&name), "{name} not offered:\n{}", unknown.stderr);
    }
    // "in" starts no name, but is part of chain, monitoring and naming.
    let ambiguous = env.reins(&["agents-guide", "in"]).code(2);
    assert!(ambiguous.stderr.contains("ambiguous"), "{}", ambiguous.stderr);
    assert!(ambiguous.stderr.contains("chain, monitoring, naming"), "{}", ambiguous.stderr);
    let recipe = env.reins(&["recipes", "99"]).code(2);
    assert!(recipe.stderr.contains("no recipe \"99\""), "{}", recipe.stderr);
    assert!(recipe.stderr.contains("fire-and-watch"), "{}", recipe.stderr);
    env.reins(&["agents-guide", "show"]).code(2);
    env.reins(&["recipes", "show", "1", "2"]).code(2);
}

#[test]
fn lists_and_documents_come_as_json() {
    let env = TestEnv::new();
    let recipes = docs_in("recipes");
    let list = env.reins(&["recipes", "--json"]).ok().json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), recipes.len());
    for (entry, (name, file)) in list.iter().zip(&recipes) {
        assert_eq!(entry["name"], name.as_str());
        assert_eq!(entry["file"], file.as_str());
        assert!(entry["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(entry["number"].as_u64().is_some_and(|n| n > 0));
        assert!(entry.get("text").is_none(), "a list has no texts");
    }
    let topics = env.reins(&["agents-guide", "list", "--json"]).ok().json();
    assert_eq!(topics.as_array().unwrap().len(), docs_in("guides/agents").len());
    let one = env.reins(&["agents-guide", "naming", "--json"]).ok().json();
    assert_eq!(one["name"], "naming");
    assert_eq!(one["text"].as_str().unwrap(), read("guides/agents/06-naming.md"));
    let guide = env.reins(&["guide", "--json"]).ok().json();
    assert_eq!(guide["title"], "Getting started with reins");
    assert_eq!(guide["text"].as_str().unwrap(), read("guides/getting-started.md"));
}

#[test]
fn the_guide_for_people_is_the_getting_started_file() {
    let env = TestEnv::new();
    let guide = env.reins(&["guide"]).ok().stdout;
    assert_eq!(guide.trim_end(), read("guides/getting-started.md").trim_end());
    assert!(guide.contains("reins agents-guide"), "it points agents to their guide");
}
