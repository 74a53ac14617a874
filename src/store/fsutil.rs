//! File-system primitives with the modes DESIGN §4 asks for: directories
//! 0700, files 0600, atomic replacement for anything another process reads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700. Existing
/// directories are left as they are, except `dir` itself, which is
/// tightened to 0700 if reins created it earlier with a looser mode.
pub(crate) fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 && is_owned_by_me(&meta) {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn is_owned_by_me(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == rustix::process::geteuid().as_raw()
}

/// Opens a private (0600) file for appending, creating it if needed.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// Opens a JSON-lines log (0600) for appending, after making sure its
/// last line is complete. A writer killed mid-line (a crash, SIGKILL, a
/// full disk) leaves a torn last line; the next record appended to it would
/// join that line and be lost with it. Ending the torn line first makes it
/// a line of its own, which readers skip. The file never shrinks, so
/// followers' offsets stay valid.
pub(crate) fn open_jsonl(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::FileExt;
    let mut file =
        OpenOptions::new().create(true).read(true).append(true).mode(0o600).open(path)?;
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.read_exact_at(&mut last, len - 1)?;
    }
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(file)
}

/// Creates or truncates a private (0600) file.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path)
}

/// Replaces `path` with `bytes` atomically and durably: readers see the
/// old file or the new one, never a half-written one, and after a machine
/// crash the file holds one of them (the data is synced before the rename,
/// the directory after it).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = create_private(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a directory's entries (a rename, a new file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jsonl_log_with_a_torn_last_line_gets_it_ended_before_the_next_record() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log.jsonl");
        open_jsonl(&path).unwrap().write_all(b"{\"a\":1}\n{\"b\":").unwrap();
        open_jsonl(&path).unwrap().write_all(b"{\"c\":3}\n").unwrap();
        open_jsonl(&path).unwrap().write_all(b"{\"d\":4}\n").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":\n{\"c\":3}\n{\"d\":4}\n");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
