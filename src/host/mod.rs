//! The host: the one long-lived process per session (DESIGN §1).

pub(crate) mod child;
mod delivery;
mod file_hook;
mod input;
mod launch;
pub(crate) mod limits;
pub(crate) mod progress;
mod pty;
mod queue;
mod relay;
mod session;
mod stop;
mod turns;

use std::time::Duration;

pub(crate) use launch::{
    ApprovalPolicy, LaunchRecord, LaunchSpec, RateLimitPolicy, env_with, fill_key,
};
pub(crate) use relay::LeftoverModes;

use crate::adapter::{Profile, ProfileSource};
use crate::error::{CliError, code};
use crate::host::relay::Relay;
use crate::host::session::{BootFailure, Session};
use crate::store::events::{self, EventWriter};
use crate::store::exit_record::{ExitReason, ExitRecord};
use crate::store::lock::{ClaimLock, HostLock};
use crate::time;

/// Whether the host shows the agent on its own terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Terminal {
    /// Relay to stdin/stdout (foreground and tmux modes).
    Relay,
    /// No terminal (detached).
    Headless,
}

/// Runs a session to its end and returns the agent's shell status.
/// `claim` is the `run` client's claim on the id when the host runs inside
/// that client (foreground mode); it is released once the host holds the id.
pub(crate) fn run(
    spec: LaunchSpec,
    terminal: Terminal,
    claim: Option<ClaimLock>,
) -> Result<u8, CliError> {
    let mine = env!("CARGO_PKG_VERSION");
    if let Some(theirs) = spec.reins_version.as_deref().filter(|v| *v != mine) {
        return Err(CliError::failure(format!(
            "this session host is reins {mine}, but reins {theirs} started it"
        ))
        .hint("install reins and reins-host from one build: cargo install --path ."));
    }
    let state = spec.state();
    let paths = state.session(&spec.scope, &spec.id);
    paths.ensure_dirs().map_err(|err| {
        CliError::failure(format!("cannot create {}: {err}", paths.dir.display()))
    })?;
    let Some(_lock) = HostLock::acquire(&paths.host_lock(), Duration::from_secs(2))? else {
        return Err(CliError::failure(format!("session {} is already running", spec.id)));
    };
    drop(claim);
    init_tracing(&paths.host_log());
    limits::raise_nofile();
    let profile = Profile::parse(&spec.profile_toml, ProfileSource::Builtin)
        .map_err(|err| CliError::failure(format!("invalid adapter profile: {err}")))?;
    let events = EventWriter::open(&paths.events(), &spec.run, &spec.id)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::failure(format!("cannot start the host runtime: {err}")))?;
    runtime.block_on(async move {
        let relay = match terminal {
            Terminal::Relay => Some(Relay::start()?),
            Terminal::Headless => None,
        };
        let started_at = time::now_rfc3339();
        let adapter = profile.name.clone();
        match Session::start(spec.clone(), paths.clone(), profile, events, relay) {
            Ok((session, listener)) => Ok(session.run(listener).await),
            Err(BootFailure { detail, mut events }) => {
                tracing::error!("boot failure: {}", detail);
                let record = ExitRecord {
                    schema_version: events::SCHEMA_VERSION,
                    id: spec.id.clone(),
                    run: spec.run.clone(),
                    code: None,
                    signal: None,
                    reason: ExitReason::BootFailure,
                    detail: Some(detail.clone()),
                    turns: 0,
                    started_at,
                    exited_at: time::now_rfc3339(),
                };
                record.write(&paths.exit_record())?;
                let info = session::run_info(&spec, &adapter);
                crate::store::dispatch::close_run(&mut events, &paths.events(), &info, &record)?;
                let _ = crate::store::fsutil::remove_if_exists(&paths.registry());
                Ok(code::FAILURE)
            }
        }
    })
}

fn init_tracing(path: &std::path::Path) {
    let Ok(file) = crate::store::fsutil::open_append(path) else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REINS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}
