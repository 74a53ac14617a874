//! What every agent process gets between fork and exec, whatever its
//! transport: its own session (so the host can signal its whole tree), the
//! open-file limit the host inherited, death with its host, and standard
//! input, output and error as its only descriptors.
//!
//! An agent is untrusted (DESIGN §10). A descriptor it inherits by accident
//! is a way around the host: a grandchild holding the PTY master could type
//! into the agent's own terminal and answer its approval dialog. So every
//! descriptor above 2 is closed at exec, whoever opened it and however (the
//! host's own files, the control socket, something the host inherited from
//! the shell or tmux that started it).
//!
//! An agent must not outlive its host either: a host killed with SIGKILL
//! cannot clean up, and an agent left behind is tracked by nothing. The
//! kernel ends it: `PR_SET_PDEATHSIG` sends SIGKILL when the host goes,
//! and for a PTY agent the terminal hangs up as well (the host is the only
//! holder of the master). What the agent left running in the background is
//! found later by its session id and its `REINS_RUN` mark
//! ([`crate::procs::leftovers`]) and ended by the next `reins run` of the id
//! or by `reins gc`.

use std::io;

use rustix::process::Signal;

/// How the agent is attached to its input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdio {
    /// Its stdin, stdout and stderr are the slave side of a PTY, which
    /// becomes its controlling terminal.
    Terminal,
    /// Pipes (a protocol on stdio); no controlling terminal.
    Pipes,
}

/// Makes `cmd` start the agent as described in the module docs.
pub(crate) fn prepare(cmd: &mut tokio::process::Command, stdio: Stdio) {
    let host = rustix::process::getpid();
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (setsid, ioctl, setrlimit, prctl, getppid, close_range/fcntl), none
    // of which allocates or takes a lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setsid()?;
            if stdio == Stdio::Terminal {
                // stdin is the slave: make it our controlling terminal, so
                // job control and SIGWINCH work in the agent.
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
            }
            // Before the limit goes back down: the fallback walks up to the
            // host's own (raised) limit.
            close_from_3_at_exec();
            crate::host::limits::restore_for_agent()?;
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // The host may have died between fork and prctl: then nothing
            // would ever send the signal.
            if rustix::process::getppid() != Some(host) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Marks every descriptor above 2 close-on-exec. Marking instead of closing
/// keeps the pipe through which the standard library reports a failed exec
/// (it is close-on-exec already).
fn close_from_3_at_exec() {
    // SAFETY: close_range(2) takes no pointers; CLOSE_RANGE_CLOEXEC only
    // changes descriptor flags.
    let done = unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) == 0
    };
    if done {
        return;
    }
    // Kernels before 5.11: one fcntl per possible descriptor, up to the
    // host's limit (nothing in the host can hold a descriptor above it).
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 16)
        .min(1 << 20);
    for fd in 3..limit as i32 {
        // SAFETY: F_SETFD on a descriptor that may not be open; EBADF is
        // the only effect then.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}
