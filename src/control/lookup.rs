//! Finding sessions by id, and reading what their files say about them.
//!
//! A client looks for an id in the scope of its working directory (or
//! `--repo DIR`) first; failing that, a unique match in any scope will do,
//! so `reins stop --id x` works from anywhere. A session is *live* when its
//! host holds the host lock, *dead* when its registry is there but no host
//! holds the lock (the host was killed), and *exited* when only its history
//! is left.

use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::ids;
use crate::store::exit_record::ExitRecord;
use crate::store::lock;
use crate::store::paths::{SessionPaths, StateRoot};
use crate::store::registry::SessionRecord;
use crate::store::scope;

/// What the files of one session say.
#[derive(Debug)]
pub(crate) struct SessionView {
    pub(crate) paths: SessionPaths,
    /// The registry entry, if there is a readable one.
    pub(crate) record: Option<SessionRecord>,
    /// Why the registry entry could not be read, if it exists but is broken.
    pub(crate) corrupt: Option<String>,
    pub(crate) liveness: Liveness,
}

/// Whether a session's host is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Live,
    /// A registry entry without a host: the host died without cleaning up.
    Dead,
    /// No registry entry: the session ended (or never started).
    Exited,
}

impl SessionView {
    pub(crate) fn read(paths: SessionPaths) -> SessionView {
        let alive = lock::host_alive(&paths.host_lock());
        let (record, corrupt) = match SessionRecord::read(&paths.registry()) {
            Ok(record) => (record, None),
            Err(err) => (None, Some(err.to_string())),
        };
        let has_registry = record.is_some() || corrupt.is_some();
        let liveness = match (alive, has_registry) {
            (true, _) => Liveness::Live,
            (false, true) => Liveness::Dead,
            (false, false) => Liveness::Exited,
        };
        SessionView { paths, record, corrupt, liveness }
    }

    pub(crate) fn exit_record(&self) -> Option<ExitRecord> {
        ExitRecord::read(&self.paths.exit_record())
    }

    /// Whether anything of this session is on disk at all.
    pub(crate) fn exists(&self) -> bool {
        self.liveness != Liveness::Exited
            || self.paths.events().exists()
            || self.paths.exit_record().exists()
    }
}

/// The scope a client command works in: `--repo DIR`, else its cwd.
pub(crate) fn client_scope(repo: Option<&Path>) -> Result<scope::Scope, CliError> {
    let dir: PathBuf = match repo {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(CliError::usage(format!(
                    "--repo {}: no such directory",
                    dir.display()
                )));
            }
            dir.to_path_buf()
        }
        None => std::env::current_dir().map_err(|err| {
            CliError::failure(format!("cannot read the current directory: {err}"))
        })?,
    };
    Ok(scope::scope_of(&dir))
}

/// Finds the session called `id` (see the module docs for the search order).
pub(crate) fn find(
    state: &StateRoot,
    id: &str,
    repo: Option<&Path>,
) -> Result<SessionView, CliError> {
    ids::validate(id)?;
    let here = client_scope(repo)?;
    let local = SessionView::read(state.session(&here.name, id));
    if local.exists() {
        return Ok(local);
    }
    let mut found: Vec<SessionView> = state
        .list_sessions(None)
        .into_iter()
        .filter(|p| p.id == id)
        .map(SessionView::read)
        .filter(SessionView::exists)
        .collect();
    if repo.is_none() && found.len() > 1 {
        // Prefer a running session over old history of the same name.
        let live: Vec<usize> =
            (0..found.len()).filter(|i| found[*i].liveness == Liveness::Live).collect();
        if live.len() == 1 {
            return Ok(found.swap_remove(live[0]));
        }
    }
    match found.len() {
        0 => Err(CliError::failure(format!("no session named {id}"))
            .hint("`reins status --all` lists sessions in every repository")),
        1 => Ok(found.remove(0)),
        _ => {
            let scopes: Vec<String> = found.iter().map(|v| v.paths.scope.clone()).collect();
            Err(CliError::failure(format!(
                "session id {id} exists in several repositories ({})",
                scopes.join(", ")
            ))
            .hint("run the command from the session's repository, or pass --repo DIR"))
        }
    }
}

/// Requires a live session.
pub(crate) fn require_live(view: &SessionView) -> Result<&SessionRecord, CliError> {
    match (view.liveness, &view.record) {
        (Liveness::Live, Some(record)) => Ok(record),
        (Liveness::Live, None) => Err(CliError::failure(format!(
            "session {} is starting or its registry is unreadable{}",
            view.paths.id,
            view.corrupt.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        ))),
        (Liveness::Dead, _) => {
            Err(CliError::failure(format!("session {}: its host process died", view.paths.id))
                .hint("`reins gc` cleans up after it"))
        }
        (Liveness::Exited, _) => {
            Err(CliError::failure(format!("session {} has exited", view.paths.id))
                .hint(format!("`reins events --id {}` shows how it ended", view.paths.id)))
        }
    }
}
