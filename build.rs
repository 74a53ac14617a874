//! Embeds every adapter profile in `adapters/*.toml` into the binary, so
//! adding an agent is one TOML file: no list to keep in sync.

use std::env;
use std::fs;
use std::path::Path;

fn main() {
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
