//! A chain's state on disk: `$REINS_STATE_DIR/chains/ID/state.json` (0600,
//! replaced atomically after every change) next to its `events.jsonl`.
//! `reins chain status` reads it; `reins chain resume` continues from it.
//!
//! The file holds the validated chain ([`Def`]) too, so a resume runs what
//! was validated, whatever happened to the chain file since.
//!
//! One runner at a time: `run` and `resume` hold `runner.lock` in the
//! chain's directory (an exclusive `flock`) for the runner's whole life.
//! The kernel drops it when the runner dies, however it dies, so a second
//! runner is refused for exactly as long as the first one runs; the
//! kernel also says who holds it (`/proc/locks`), so no pid written in a
//! file can be stale.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chain::file::Def;
use crate::store::paths::StateRoot;

/// The state file's format version.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// How the chain as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ChainStatus {
    Running,
    /// Every step accepted.
    Accepted,
    /// Every required step accepted; some optional work was not.
    Partial,
    /// A required step failed.
    Failed,
    Timeout,
    Interrupted,
}

impl ChainStatus {
    pub(crate) fn exit_code(self) -> u8 {
        use crate::error::code;
        match self {
            ChainStatus::Accepted | ChainStatus::Partial => code::OK,
            ChainStatus::Failed | ChainStatus::Running => code::FAILURE,
            ChainStatus::Timeout => code::TIMEOUT,
            ChainStatus::Interrupted => 130,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChainStatus::Running => "running",
            ChainStatus::Accepted => "accepted",
            ChainStatus::Partial => "partial",
            ChainStatus::Failed => "failed",
            ChainStatus::Timeout => "timeout",
            ChainStatus::Interrupted => "interrupted",
        }
    }
}

/// How one step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StepStatus {
    Pending,
    Running,
    /// Every task accepted.
    Accepted,
    /// Some tasks accepted, some skipped (only an optional step ends so).
    Partial,
    /// No task accepted, or a required step lost one.
    Failed,
    /// Never started: the chain stopped before it.
    NotRun,
}

/// How one task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskStatus {
    Pending,
    Running,
    Accepted,
    /// Its last run failed; the gate has not decided yet.
    Failed,
    /// The gate gave up on it.
    Skipped,
    /// The runner was stopped (or died) while it ran; a resume runs it again.
    Interrupted,
}

/// The whole state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChainState {
    pub(crate) schema_version: u32,
    pub(crate) id: String,
    pub(crate) status: ChainStatus,
    pub(crate) cwd: PathBuf,
    pub(crate) gate_agent: Option<String>,
    /// The process running the chain now (or last).
    pub(crate) runner_pid: u32,
    /// When that process started (clock ticks after boot), so a later
    /// process that got the same pid is not taken for it.
    #[serde(default)]
    pub(crate) runner_start_ticks: Option<u64>,
    pub(crate) started_at: String,
    pub(crate) ended_at: Option<String>,
    pub(crate) duration_s: f64,
    /// How many times it was resumed.
    pub(crate) resumes: u32,
    /// Gate sessions started (stopped by a resume if a runner died).
    #[serde(default)]
    pub(crate) gate_sessions: Vec<String>,
    pub(crate) steps: Vec<StepState>,
    pub(crate) chain: Def,
}

/// One step's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepState {
    pub(crate) name: String,
    pub(crate) status: StepStatus,
    pub(crate) required: bool,
    pub(crate) started_at: Option<String>,
    pub(crate) ended_at: Option<String>,
    pub(crate) duration_s: f64,
    /// Batches run so far.
    pub(crate) batches: u32,
    /// Gate decisions taken in this step.
    pub(crate) gates: u32,
    pub(crate) tasks: Vec<TaskState>,
}

/// One task's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskState {
    /// `STEP` or `STEP-N`: how the gate and the summary name it.
    pub(crate) key: String,
    /// The batch item (`{{task}}`), if the step fans out.
    pub(crate) item: Option<String>,
    /// The dispatch id of its runs (its sessions are DISPATCH, DISPATCH-b, …).
    pub(crate) dispatch: String,
    pub(crate) status: TaskStatus,
    /// Runs so far (the first and the gate's retries).
    pub(crate) runs: u32,
    /// Dispatch attempts in all its runs.
    pub(crate) attempts: u32,
    /// Every worker session a run started.
    pub(crate) sessions: Vec<String>,
    /// The accepted attempt's session and answer (its screen, cut).
    pub(crate) session: Option<String>,
    pub(crate) output: Option<String>,
    /// Why its last run failed.
    pub(crate) reason: Option<String>,
    /// What kind of failure that was: check, verdict, timeout, start, crash.
    pub(crate) failure: Option<String>,
    /// The gate's note for its next run (`{{feedback}}`).
    pub(crate) note: Option<String>,
    /// What its last failed run left: the failed checks' output and the
    /// verdict (paths and tails), for the gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) evidence: Vec<crate::chain::gate::Evidence>,
    /// Notes a gate routed to this task (added to its brief).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) context: Vec<String>,
    pub(crate) duration_s: f64,
    pub(crate) tokens: Option<u64>,
}

/// A runner's exclusive hold on its chain; dropping it (or dying) lets go.
#[derive(Debug)]
pub(crate) struct RunnerLock {
    _lock: crate::store::lock::OwnerLock,
}

/// Why a runner could not take its chain.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunnerLockError {
    /// Another runner holds it; its pid when it wrote one.
    #[error("another runner holds it{}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { pid: Option<u32> },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl RunnerLock {
    pub(crate) fn path_in(dir: &Path) -> PathBuf {
        dir.join("runner.lock")
    }

    /// Takes the chain in `dir` for this process, or says who has it.
    pub(crate) fn try_acquire(dir: &Path) -> Result<RunnerLock, RunnerLockError> {
        let path = Self::path_in(dir);
        match crate::store::lock::OwnerLock::try_take(&path) {
            Ok(Ok(lock)) => Ok(RunnerLock { _lock: lock }),
            Ok(Err(pid)) => Err(RunnerLockError::Held { pid }),
            Err(source) => Err(RunnerLockError::Io { path, source }),
        }
    }
}

/// Where chain ID keeps its files.
pub(crate) fn dir_of(state: &StateRoot, id: &str) -> PathBuf {
    state.root().join("chains").join(id)
}

impl ChainState {
    pub(crate) fn path_in(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Reads `state.json` of chain directory `dir`.
    pub(crate) fn read(dir: &Path) -> std::io::Result<ChainState> {
        let text = std::fs::read_to_string(Self::path_in(dir))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Replaces `state.json` atomically.
    pub(crate) fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        crate::store::fsutil::write_atomic(&Self::path_in(dir), &text)
    }

    /// Whether the process that ran it last is still running it.
    pub(crate) fn runner_alive(&self) -> bool {
        if !crate::procs::is_running(self.runner_pid, self.runner_start_ticks) {
            return false;
        }
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.runner_pid));
        match cmdline {
            Ok(bytes) => {
                let args: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
                args.iter().any(|a| *a == b"chain")
                    && args.iter().any(|a| *a == self.id.as_bytes() || *a == b"run")
            }
            Err(_) => false,
        }
    }

    /// Records this process as the chain's runner.
    pub(crate) fn claim_runner(&mut self) {
        self.runner_pid = std::process::id();
        self.runner_start_ticks = crate::procs::stat(self.runner_pid).map(|s| s.start_ticks);
    }

    pub(crate) fn tokens(&self) -> Option<u64> {
        let all: Vec<u64> =
            self.steps.iter().flat_map(|s| &s.tasks).filter_map(|t| t.tokens).collect();
        (!all.is_empty()).then(|| all.iter().sum())
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.steps.iter().flat_map(|s| &s.tasks).map(|t| t.attempts).sum()
    }
}
