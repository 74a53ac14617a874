//! Other machines: the `reins` there does the work, this one is a client
//! that reaches it over the system's OpenSSH with a shared connection.

pub(crate) mod hosts;
pub(crate) mod ssh;
pub(crate) mod wait;

pub(crate) use ssh::{Ssh, Target, Tty};

/// The environment variable a client sets on the remote command line: a
/// remote `reins` of another version refuses to run rather than answer in
/// a format the client may not read.
pub(crate) const CLIENT_VERSION_VAR: &str = "REINS_CLIENT_VERSION";

/// This build's version, as `reins --version` prints it.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Refuses to run a command a client of another version sent over ssh.
pub(crate) fn check_client_version() -> Result<(), crate::error::CliError> {
    let Some(client) = std::env::var_os(CLIENT_VERSION_VAR) else { return Ok(()) };
    let client = client.to_string_lossy();
    if client == VERSION {
        return Ok(());
    }
    Err(crate::error::CliError::usage(format!(
        "the reins on this host is {VERSION} but the client that called it over ssh is {client}"
    ))
    .hint(
        "use the same version on both: from the client, `reins hosts install NAME --force` \
         copies its reins to this host",
    ))
}
