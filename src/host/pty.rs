//! The agent's pseudo-terminal.
//!
//! The agent becomes the leader of a new session whose controlling terminal
//! is the PTY, so the host can signal its whole process group and the agent
//! sees a real terminal. The master side is non-blocking and driven by
//! tokio; reads and writes never block the host's loop. A read that fails
//! with EIO means every slave descriptor is closed: end of output.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;
use tokio::io::unix::AsyncFd;

use crate::store::registry::Size;

/// The master side of the agent's PTY.
pub(crate) struct Pty {
    master: AsyncFd<OwnedFd>,
}

/// What to run in the PTY.
pub(crate) struct Spawn<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) cwd: &'a Path,
    pub(crate) env: &'a [(String, String)],
    pub(crate) size: Size,
}

impl Pty {
    /// Opens a PTY and starts the agent in it. Returns the master and the
    /// child handle.
    pub(crate) fn spawn(spec: &Spawn<'_>) -> io::Result<(Pty, tokio::process::Child)> {
        // Close-on-exec from the start: the agent and what it runs must never
        // hold the master (through it, anything could type as the user).
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let name = rustix::pty::ptsname(&master, Vec::new())?;
        let slave: OwnedFd = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        rustix::termios::tcsetwinsize(&slave, winsize(spec.size))?;

        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty agent command"))?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(spec.cwd)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))))
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        crate::host::child::prepare(&mut cmd, crate::host::child::Stdio::Terminal);
        let child = cmd.spawn()?;
        // `cmd` (holding the slave copies) is dropped here, so only the
        // agent keeps the slave open and EIO really means "agent side gone".
        drop(cmd);

        let flags = fcntl_getfl(&master)?;
        fcntl_setfl(&master, flags | OFlags::NONBLOCK)?;
        // SAFETY: an `OwnedFd` always reports the descriptor it owns, and keeps
        // it open until the `AsyncFd` drops it.
        let master = unsafe { AsyncFd::register(master) }.map_err(|err| err.into_parts().1)?;
        Ok((Pty { master }, child))
    }

    /// Reads agent output; `Ok(0)` at end of output.
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut *buf).map_err(io::Error::from))
            {
                Ok(Err(err))
                    if err.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) =>
                {
                    return Ok(0);
                }
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `bytes` to the agent, waiting while its input is full.
    pub(crate) async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), bytes).map_err(io::Error::from))
            {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(err)) => return Err(err),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Tells the agent its terminal changed size (it gets SIGWINCH).
    pub(crate) fn resize(&self, size: Size) -> io::Result<()> {
        rustix::termios::tcsetwinsize(self.master.get_ref().as_fd(), winsize(size))?;
        Ok(())
    }
}

fn winsize(size: Size) -> Winsize {
    Winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 }
}
