//! Embeds every adapter profile in `adapters/*.toml`, every agents' guide
//! topic in `guides/agents/*.md` and every recipe in `recipes/*.md` into the
//! binary, so adding one is adding a file: no list to keep in sync.

use std::env;
use std::fs;
use std::path::Path;

fn main() {
    embed_docs("guides/agents", "AGENT_GUIDES", "Topics of `reins agents-guide`");
    embed_docs("recipes", "RECIPES", "Recipes of `reins recipes`");
    let dir = Path::new("adapters");
    println!("cargo::rerun-if-changed=adapters");
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read adapters/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let mut code = String::from("/// Built-in adapter profiles: (file stem, TOML text).\n");
    code.push_str("pub(crate) const BUILTIN: &[(&str, &str)] = &[\n");
    for name in &names {
        let stem = name.trim_end_matches(".toml");
        let path = fs::canonicalize(dir.join(name)).expect("canonical adapter path");
        println!("cargo::rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({stem:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_adapters.rs");
    fs::write(out, code).expect("write builtin_adapters.rs");
}

/// Writes `$OUT_DIR/builtin_<dir, / as _>.rs`: a `NAME` constant listing (file name,
/// text) of every `*.md` file in `dir`, sorted by file name.
fn embed_docs(dir: &str, name: &str, doc: &str) {
    let path = Path::new(dir);
    println!("cargo::rerun-if-changed={dir}");
    let mut files: Vec<String> = fs::read_dir(path)
        .unwrap_or_else(|err| panic!("read {dir}/: {err}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    files.sort();
    let mut code = format!("/// {doc}: (file name, Markdown text).\n");
    code.push_str(&format!("pub(crate) const {name}: &[(&str, &str)] = &[\n"));
    for file in &files {
        let full = fs::canonicalize(path.join(file)).expect("canonical doc path");
        println!("cargo::rerun-if-changed={}", full.display());
        code.push_str(&format!(
            "    ({file:?}, include_str!({:?})),\n",
            full.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR"))
        .join(format!("builtin_{}.rs", dir.replace('/', "_")));
    fs::write(out, code).expect("write embedded docs");
}
