//! harnex compatibility below the command line: reins replaces harnex (the
//! Ruby gem), and its users' scripts and agent briefs should run unchanged.
//!
//! This module owns what changes when the binary is invoked as `harnex`
//! (a symlink; see docs/harnex.md): the default state directory and the
//! relay header. It also reads the `HARNEX_*` variables wherever reins reads
//! a `REINS_*` one that is unset. The command-line forms are in
//! `cli::compat`.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::OnceLock;

/// Which program the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Reins,
    /// Invoked as `harnex`: harnex's defaults.
    Harnex,
}

static FLAVOR: OnceLock<Flavor> = OnceLock::new();

/// Fixes the flavor for this process (once, at start; later calls are
/// ignored).
pub(crate) fn set_flavor(flavor: Flavor) {
    let _ = FLAVOR.set(flavor);
}

/// The flavor of this process (`Reins` unless the command line said
/// otherwise: the library and the host are always reins).
pub(crate) fn flavor() -> Flavor {
    FLAVOR.get().copied().unwrap_or(Flavor::Reins)
}

/// Whether this process runs as `harnex`.
pub(crate) fn is_harnex() -> bool {
    flavor() == Flavor::Harnex
}

/// The flavor a program name asks for: `harnex` (whatever directory the
/// symlink is in) is harnex.
pub(crate) fn flavor_of(argv0: &OsStr) -> Flavor {
    match Path::new(argv0).file_name() {
        Some(name) if name == "harnex" => Flavor::Harnex,
        _ => Flavor::Reins,
    }
}

/// The program's name in messages.
pub(crate) fn program() -> &'static str {
    match flavor() {
        Flavor::Reins => "reins",
        Flavor::Harnex => "harnex",
    }
}

/// A non-empty environment variable.
fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `REINS_<name>`, else `HARNEX_<name>` (for a machine set up for harnex).
pub(crate) fn env_var(name: &str) -> Option<String> {
    non_empty(&format!("REINS_{name}")).or_else(|| non_empty(&format!("HARNEX_{name}")))
}

/// The state directory under the home directory when no variable names
/// one: harnex's own (`~/.local/state/harnex`, which harnex does not
/// derive from XDG_STATE_HOME) when invoked as harnex.
pub(crate) fn harnex_state_dir() -> Option<std::path::PathBuf> {
    is_harnex().then(|| non_empty("HOME").map(|h| Path::new(&h).join(".local/state/harnex")))?
}

/// Where a session's dispatch record goes by default when invoked as
/// harnex: `<repo>/koder/DISPATCH.jsonl` when the repository has a
/// `koder/` directory (harnex's default), else reins' own place.
pub(crate) fn harnex_record(repo_root: Option<&Path>) -> Option<std::path::PathBuf> {
    let koder = repo_root?.join("koder");
    (is_harnex() && koder.is_dir()).then(|| koder.join("DISPATCH.jsonl"))
}

/// The session this process runs in, as a relay sender: `REINS_ID`, else
/// `HARNEX_ID`.
pub(crate) fn sender_id() -> Option<String> {
    env_var("ID")
}

/// Whether a message already carries a relay header (either program's):
/// a relayed message is never wrapped twice.
pub(crate) fn is_relayed(text: &str) -> bool {
    text.starts_with("[reins relay ") || text.starts_with("[harnex relay ")
}

/// The relay header naming `sender`: reins' own, or as invoked as harnex,
/// harnex's (`[harnex relay from=CLI id=ID at=LOCAL-TIME]`), which briefs
/// written for harnex look for.
pub(crate) fn relay_header(sender: &str) -> String {
    match flavor() {
        Flavor::Reins => format!("[reins relay from={sender} at={}]", crate::time::now_rfc3339()),
        Flavor::Harnex => {
            let cli = non_empty("HARNEX_SESSION_CLI").unwrap_or_else(|| "unknown".into());
            let at = jiff::ZonedDateTime::now().strftime("%Y-%m-%dT%H:%M:%S%:z");
            format!("[harnex relay from={cli} id={sender} at={at}]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_program_named_harnex_is_harnex() {
        assert_eq!(flavor_of(OsStr::new("/home/u/bin/harnex")), Flavor::Harnex);
        assert_eq!(flavor_of(OsStr::new("harnex")), Flavor::Harnex);
        assert_eq!(flavor_of(OsStr::new("/usr/bin/reins")), Flavor::Reins);
        assert_eq!(flavor_of(OsStr::new("/opt/harnex/bin/reins")), Flavor::Reins);
        assert_eq!(flavor_of(OsStr::new("harnex-old")), Flavor::Reins);
    }

    #[test]
    fn both_relay_headers_count_as_relayed() {
        assert!(is_relayed("[harnex relay from=codex id=a at=x]\nhi"));
        assert!(is_relayed("[reins relay from=a at=x]\nhi"));
        assert!(!is_relayed("hi [reins relay "));
    }
}
