//! The one integration-test binary: every test drives the real `reins`
//! binary against real PTYs (and a private tmux server where needed).

mod common;
mod support;

mod test_acp;
mod test_acp_real;
mod test_adapters;
mod test_advisor;
mod test_answer;
mod test_app_server;
mod test_attach;
mod test_bad_input;
mod test_blocked_workers;
mod test_boundary;
mod test_bounds;
mod test_buddy;
mod test_chain;
mod test_codex_schema;
mod test_dead_hosts;
mod test_dispatch;
mod test_docs;
mod test_doctor;
mod test_endpoints;
mod test_events;
mod test_examples;
mod test_foreground;
mod test_fourth_agent;
mod test_guides;
mod test_harnex;
mod test_help;
mod test_hostile_bytes;
mod test_inbox;
mod test_local_tiers;
mod test_logs;
mod test_max_log;
mod test_mcp;
mod test_mcp_agents;
mod test_mcp_orchestration;
mod test_notify;
mod test_pane;
mod test_progress;
mod test_rate_limit;
mod test_real_agents;
mod test_remote;
mod test_retire;
mod test_routing_chains;
mod test_run;
mod test_scale;
mod test_screens;
mod test_secrets;
mod test_send;
mod test_soak;
mod test_status;
mod test_stop;
mod test_supervise;
mod test_telemetry;
mod test_tmux;
mod test_top;
mod test_top_hosts;
mod test_trust;
mod test_truth_matrix;
mod test_wait;
mod test_watch;
mod test_watch_file;
mod test_worktree;

/// A `tests/test_*.rs` file that is not listed above would silently never
/// run; this fails instead.
#[test]
fn every_test_file_is_listed_in_the_runner() {
    let runner = include_str!("runner.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        if let Some(module) = name.strip_prefix("test_").and_then(|n| n.strip_suffix(".rs")) {
            let line = format!("mod test_{module};");
            assert!(runner.contains(&line), "tests/{name} is not listed in tests/runner.rs");
        }
    }
}
