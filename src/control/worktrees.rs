//! The git worktrees of sessions (`run --worktree`): finding them, and
//! telling whether one may be removed.

use crate::control::lookup::{Liveness, SessionView};
use crate::error::CliError;
use crate::store::paths::StateRoot;
use crate::worktree::WorktreeRecord;

/// A session that has a worktree record.
pub(crate) struct WithWorktree {
    pub(crate) view: SessionView,
    pub(crate) record: WorktreeRecord,
}

/// Sessions with a worktree, in `scope` (all when `None`), oldest first.
pub(crate) fn sessions_with_worktrees(state: &StateRoot, scope: Option<&str>) -> Vec<WithWorktree> {
    let mut found: Vec<WithWorktree> = state
        .list_sessions(scope)
        .into_iter()
        .filter_map(|paths| {
            let record = WorktreeRecord::read(&paths.worktree_record()).ok()??;
            Some(WithWorktree { view: SessionView::read(paths), record })
        })
        .collect();
    found.sort_by(|a, b| {
        (&a.record.created_at, &a.view.paths.id).cmp(&(&b.record.created_at, &b.view.paths.id))
    });
    found
}

/// Refuses to touch the worktree of a session that may still be using it.
pub(crate) fn check_not_running(view: &SessionView) -> Result<(), CliError> {
    let id = &view.paths.id;
    match view.liveness {
        Liveness::Exited => Ok(()),
        Liveness::Live => Err(CliError::failure(format!(
            "session {id} is running in its worktree; nothing was removed"
        ))
        .hint(format!("stop it first: reins stop --id {id}"))),
        Liveness::Dead => Err(CliError::failure(format!(
            "session {id}'s host died and its agent may still be working in the worktree; \
             nothing was removed"
        ))
        .hint(format!("clean up after it first: reins stop --id {id} (or reins gc)"))),
    }
}
