//! The world of one live run of a real agent CLI: a test environment, the
//! mock model and the agent's seeded home — or, when the run cannot happen
//! here, a loud skip (a failure under `REINS_TEST_REQUIRE_TOOLS=1`).

use std::io;
use std::path::Path;

use crate::common::{TestEnv, have_tool, skip};
use crate::support::agents::AgentHome;
use crate::support::mock_model::MockModel;

/// `missing` says why the run cannot happen, if it cannot. Otherwise
/// `seed(dir, base_url)` seeds the agent's home under the test's
/// directory, pointed at the mock model, and its environment becomes the
/// test environment's.
pub fn world(
    missing: Option<&str>,
    seed: impl FnOnce(&Path, &str) -> io::Result<AgentHome>,
) -> Option<(TestEnv, MockModel, AgentHome)> {
    if let Some(why) = missing {
        skip(&format!("live agent test: {why}"));
        return None;
    }
    if !have_tool("tmux") {
        return None;
    }
    let mut env = TestEnv::new();
    let model =
        MockModel::start(Some(&env.path().join("model.jsonl"))).expect("start the mock model");
    let home = seed(env.path(), &model.base_url()).expect("seed the agent's home");
    for (key, value) in &home.env {
        env.set_env(key, Some(value));
    }
    Some((env, model, home))
}
