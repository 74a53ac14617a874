//! What every benchmark harness shares: statistics and the results table.

#![allow(dead_code, reason = "each harness uses a different subset")]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One line of the results table.
pub struct Row {
    pub what: String,
    pub got: String,
    pub target: String,
    pub ok: bool,
}

/// The median (upper middle) of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The 99th percentile of `v`.
pub fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Prints the table and writes it to `benches/results/<date>[-name].md`.
pub fn report(name: &str, rows: &[Row]) {
    let mut md = String::new();
    let date = Command::new("date").arg("+%Y-%m-%d").output().unwrap();
    let date = String::from_utf8_lossy(&date.stdout).trim().to_string();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.to_string()))
        .unwrap_or_default();
    md.push_str(&format!("# reins benchmarks ({name}), {date}\n\n"));
    md.push_str(&format!("Machine: {} cores, {}\n\n", num_cpus(), cpu.trim()));
    md.push_str("| measurement | result | target | |\n|---|---|---|---|\n");
    for r in rows {
        let mark = if r.target == "-" {
            ""
        } else if r.ok {
            "ok"
        } else {
            "MISSED"
        };
        md.push_str(&format!("| {} | {} | {} | {mark} |\n", r.what, r.got, r.target));
    }
    println!("\n{md}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    std::fs::create_dir_all(&dir).unwrap();
    let file = if name == "suite" { format!("{date}.md") } else { format!("{date}-{name}.md") };
    let path = dir.join(file);
    std::fs::write(&path, md).unwrap();
    println!("written to {}", path.display());
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
