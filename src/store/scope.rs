//! Scopes: which repository a session works in.
//!
//! A session lives under `sessions/<scope>/<id>/`. The scope names the git
//! repository of the session's working directory, keyed by the repository's
//! *common* git directory so that every worktree of one repository shares a
//! scope (DESIGN §4). Outside a repository the directory itself is the
//! anchor. Detection reads `.git` files directly instead of running git, so a
//! client command stays within a few milliseconds.

use std::fs;
use std::path::{Path, PathBuf};

/// The scope of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    /// Directory-safe name: `<repo name>-<8 hex digits>`.
    pub(crate) name: String,
    /// Top of the working tree that contains the directory, if it is in one.
    pub(crate) repo_root: Option<PathBuf>,
}

/// Finds the scope of `dir` (which should be absolute).
pub(crate) fn scope_of(dir: &Path) -> Scope {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    match find_repo(&dir) {
        Some(repo) => {
            let label = repo_label(&repo.common_dir, &repo.root);
            Scope {
                name: format!("{}-{:08x}", sanitize(&label), hash32(&repo.common_dir)),
                repo_root: Some(repo.root),
            }
        }
        None => {
            let label = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            Scope {
                name: format!(
                    "{}-{:08x}",
                    sanitize(label.as_deref().unwrap_or("root")),
                    hash32(&dir)
                ),
                repo_root: None,
            }
        }
    }
}

struct Repo {
    root: PathBuf,
    common_dir: PathBuf,
}

fn find_repo(start: &Path) -> Option<Repo> {
    for dir in start.ancestors() {
        let dot_git = dir.join(".git");
        let Ok(meta) = fs::symlink_metadata(&dot_git) else {
            continue;
        };
        if meta.is_dir() {
            let common = fs::canonicalize(&dot_git).unwrap_or(dot_git);
            return Some(Repo { root: dir.to_path_buf(), common_dir: common });
        }
        // A worktree or submodule: `.git` is a file naming the real git dir.
        let text = fs::read_to_string(&dot_git).ok()?;
        let gitdir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
        let gitdir = dir.join(gitdir);
        let common = match fs::read_to_string(gitdir.join("commondir")) {
            Ok(rel) => gitdir.join(rel.trim()),
            Err(_) => gitdir,
        };
        let common = fs::canonicalize(&common).unwrap_or(common);
        return Some(Repo { root: dir.to_path_buf(), common_dir: common });
    }
    None
}

/// The name people know the repository by: the directory holding the common
/// `.git`, so worktrees are labelled with their main repository's name.
fn repo_label(common_dir: &Path, root: &Path) -> String {
    let main = if common_dir.file_name().is_some_and(|n| n == ".git") {
        common_dir.parent()
    } else {
        None
    };
    main.unwrap_or(root)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into())
}

fn sanitize(label: &str) -> String {
    let mut out: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' })
        .take(32)
        .collect();
    out = out.trim_matches('-').to_string();
    if out.is_empty() { "dir".into() } else { out }
}

/// FNV-1a over the path bytes: a stable short key, not a security measure.
pub(crate) fn hash32(path: &Path) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    hash32_bytes(path.as_os_str().as_bytes())
}

pub(crate) fn hash32_bytes(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktrees_share_the_main_repository_scope() {
        let tmp = tempfile::tempdir().unwrap();
        let main = tmp.path().join("proj");
        fs::create_dir_all(main.join(".git/worktrees/wt")).unwrap();
        fs::create_dir_all(main.join("src/deep")).unwrap();
        fs::write(main.join(".git/worktrees/wt/commondir"), "../..\n").unwrap();
        let wt = tmp.path().join("wt");
        fs::create_dir_all(&wt).unwrap();
        fs::write(
            wt.join(".git"),
            format!("gitdir: {}\n", main.join(".git/worktrees/wt").display()),
        )
        .unwrap();

        let a = scope_of(&main.join("src/deep"));
        let b = scope_of(&wt);
        assert_eq!(a.name, b.name);
        assert!(a.name.starts_with("proj-"), "{}", a.name);
        assert_eq!(a.repo_root.as_deref(), Some(fs::canonicalize(&main).unwrap().as_path()));
        assert_eq!(b.repo_root.as_deref(), Some(fs::canonicalize(&wt).unwrap().as_path()));
    }

    #[test]
    fn plain_directories_are_their_own_scope() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("some dir!");
        fs::create_dir_all(&a).unwrap();
        let s = scope_of(&a);
        assert!(s.name.starts_with("some-dir-"), "{}", s.name);
        assert!(s.repo_root.is_none());
        crate::ids::validate(&s.name).unwrap();
    }
}
