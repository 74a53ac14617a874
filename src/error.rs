//! Errors that reach the user, and the exit codes they map to.
//!
//! Every command returns `Result<ExitCode, CliError>`. A `CliError` carries the
//! message (a lowercase fragment that reads well after "failed to"), an
//! optional hint that says what to do next, and its exit code. Exit codes are
//! decided here and nowhere else (DESIGN §6).

use std::fmt;

/// Documented exit codes of every `reins` command.
pub(crate) mod code {
    /// Success.
    pub(crate) const OK: u8 = 0;
    /// Operational failure: no such session, session exited, stranded message.
    pub(crate) const FAILURE: u8 = 1;
    /// Usage error (bad flag or argument), or a watch escalation.
    pub(crate) const USAGE: u8 = 2;
    /// `--host`: ssh could not reach the host, or lost it (the remote
    /// command's own exit codes pass through unchanged).
    pub(crate) const UNREACHABLE: u8 = 3;
    /// `service status`: the supervisor does not run (as LSB's `status`).
    pub(crate) const NOT_RUNNING: u8 = 3;
    /// A deadline passed before the thing waited for happened.
    pub(crate) const TIMEOUT: u8 = 124;
    /// A bug in reins.
    pub(crate) const INTERNAL: u8 = 255;
}

/// An error reported to the user: what failed, what to do, and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) code: u8,
    /// The reader of our output went away (`reins events | head`): exit
    /// quietly with success, as ripgrep does.
    pub(crate) broken_pipe: bool,
}

impl CliError {
    pub(crate) fn with_code(message: impl Into<String>, code: u8) -> Self {
        Self { message: message.into(), hint: None, code, broken_pipe: false }
    }

    /// An operational failure (exit 1).
    pub(crate) fn failure(message: impl Into<String>) -> Self {
        Self::with_code(message, code::FAILURE)
    }

    /// A usage error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::with_code(message, code::USAGE)
    }

    /// A timeout (exit 124).
    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::with_code(message, code::TIMEOUT)
    }

    /// Adds the "what to do next" line.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Anything unexpected becomes an internal error; an `anyhow` chain that wraps
/// a `CliError` keeps that error's code and hint.
impl From<anyhow::Error> for CliError {
    fn from(err: anyhow::Error) -> Self {
        if let Some(cli) = err.downcast_ref::<CliError>() {
            return CliError {
                message: format!("{err:#}"),
                hint: cli.hint.clone(),
                code: cli.code,
                broken_pipe: cli.broken_pipe,
            };
        }
        if let Some(limit) = exhausted_limit(&err) {
            return CliError::failure(format!("{err:#}")).hint(limit);
        }
        let broken_pipe = err.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        CliError {
            message: format!("internal error: {err:#}"),
            hint: Some("this is a bug in reins; please report it with the command you ran".into()),
            code: if broken_pipe { code::OK } else { code::INTERNAL },
            broken_pipe,
        }
    }
}

/// Running out of descriptors is not a bug in reins: say which limit to
/// raise instead.
fn exhausted_limit(err: &anyhow::Error) -> Option<&'static str> {
    let errno =
        err.chain().find_map(|cause| cause.downcast_ref::<std::io::Error>()?.raw_os_error())?;
    match rustix::io::Errno::from_raw_os_error(errno) {
        rustix::io::Errno::MFILE => Some(
            "this process reached its open-file limit: raise it (`ulimit -n`, or LimitNOFILE= \
             for a service); reins' limits with many sessions are in docs/scale.md",
        ),
        rustix::io::Errno::NFILE => Some(
            "the system reached its open-file limit (fs.file-max): close something, or raise \
             it with sysctl",
        ),
        _ => None,
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        CliError::from(anyhow::Error::from(err))
    }
}

pub(crate) type CliResult<T = u8> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_a_failure_with_a_hint_not_a_bug() {
        let err = CliError::from(std::io::Error::from_raw_os_error(24));
        assert_eq!(err.code, code::FAILURE);
        assert!(err.hint.as_deref().is_some_and(|h| h.contains("ulimit -n")), "{err:?}");
        let bug = CliError::from(std::io::Error::other("odd"));
        assert_eq!(bug.code, code::INTERNAL);
    }
}
