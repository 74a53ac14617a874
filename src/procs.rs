//! Processes: signalling an agent's whole tree, and telling a live process
//! from a recycled pid.
//!
//! The agent is the leader of its own session and process group. Signalling
//! the group reaches everything it started in the foreground; processes it
//! moved to other groups (a shell's background jobs) still share its
//! session, so the host also signals every process of that session. Only a
//! process that called `setsid` itself escapes, as it would escape a
//! terminal hangup.

use std::fs;

use rustix::process::{Pid, Signal};

/// The signals profiles and clients may name.
pub(crate) fn signal_by_name(name: &str) -> Option<Signal> {
    let name = name.trim_start_matches("SIG");
    Some(match name {
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        "TERM" => Signal::TERM,
        "KILL" => Signal::KILL,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        _ => return None,
    })
}

/// The fields of `/proc/PID/stat` reins uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) state: char,
    /// The parent's pid (0 for the first process of a pid namespace).
    pub(crate) ppid: u32,
    pub(crate) session: i32,
    /// Start time in clock ticks after boot.
    pub(crate) start_ticks: u64,
}

/// Reads `/proc/PID/stat`; `None` if the process does not exist.
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name is in parentheses and may itself contain spaces and
    // parentheses, so split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state) of proc(5).
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is still the process that started at `start_ticks` and
/// has not exited (zombies count as gone).
pub(crate) fn is_running(pid: u32, start_ticks: Option<u64>) -> bool {
    match stat(pid) {
        Some(st) if st.state == 'Z' || st.state == 'X' => false,
        Some(st) => start_ticks.is_none_or(|t| t == st.start_ticks),
        None => false,
    }
}

/// Every live process whose session id is `sid`.
pub(crate) fn session_members(sid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|st| st.session == sid as i32 && st.state != 'Z'))
        .collect()
}

/// Sends `sig` to the agent's process group and to every other process in
/// its session. `leader` is the agent's pid (= its pgid and sid).
pub(crate) fn signal_tree(leader: u32, sig: Signal) {
    if let Some(pid) = Pid::from_raw(leader as i32) {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
    for member in session_members(leader) {
        if let Some(pid) = Pid::from_raw(member as i32) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
}

/// What is left of a run whose host is gone: every live process in the
/// agent's session that started no earlier than the agent (a recycled
/// session id belongs to someone else), and every process that carries the
/// run's `REINS_RUN` mark in its environment (one that called `setsid`
/// left the session but not its environment). The agent itself is among
/// them while it runs.
pub(crate) fn leftovers(run: &str, agent_pid: u32, agent_start_ticks: Option<u64>) -> Vec<u32> {
    let mark = format!("REINS_RUN={run}");
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let Some(st) = stat(*pid) else { return false };
            if st.state == 'Z' || st.state == 'X' {
                return false;
            }
            let in_session = st.session == agent_pid as i32
                && agent_start_ticks.is_none_or(|t| st.start_ticks >= t);
            in_session || environ_has(*pid, &mark)
        })
        .collect()
}

/// Whether `/proc/PID/environ` holds the entry `entry` (`NAME=value`).
/// Unreadable (another user's process, or gone): false.
pub(crate) fn environ_has(pid: u32, entry: &str) -> bool {
    environ(pid).is_some_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
}

/// The value of `name` in `/proc/PID/environ`, if it is there and UTF-8.
pub(crate) fn environ_var(pid: u32, name: &str) -> Option<String> {
    let env = environ(pid)?;
    let prefix = format!("{name}=");
    env.split(|b| *b == 0)
        .find_map(|e| e.strip_prefix(prefix.as_bytes()))
        .and_then(|v| String::from_utf8(v.to_vec()).ok())
}

/// The command name of `pid` (`/proc/PID/comm`).
pub(crate) fn command_name(pid: u32) -> Option<String> {
    let name = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end().to_string())
}

/// `pid` and its ancestors, nearest first, up to (not including) pid 1 or
/// a process that is gone. Bounded: a pid namespace is not that deep.
pub(crate) fn ancestry(pid: u32) -> Vec<(u32, ProcStat)> {
    let mut chain = Vec::new();
    let mut next = pid;
    while next > 1 && chain.len() < 256 {
        let Some(st) = stat(next) else { break };
        chain.push((next, st));
        next = st.ppid;
    }
    chain
}

fn environ(pid: u32) -> Option<Vec<u8>> {
    fs::read(format!("/proc/{pid}/environ")).ok()
}

/// Sends `sig` to each of `pids`.
pub(crate) fn signal_all(pids: &[u32], sig: Signal) {
    for pid in pids {
        signal_pid(*pid, sig);
    }
}

/// Sends `sig` to one process.
pub(crate) fn signal_pid(pid: u32, sig: Signal) -> bool {
    Pid::from_raw(pid as i32).is_some_and(|pid| rustix::process::kill_process(pid, sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100 18446744073709551615";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.session, 4242);
        assert_eq!(st.start_ticks, 987654);
    }

    #[test]
    fn knows_itself_and_not_a_recycled_pid() {
        let me = std::process::id();
        let st = stat(me).unwrap();
        assert!(is_running(me, Some(st.start_ticks)));
        assert!(!is_running(me, Some(st.start_ticks + 1)));
        assert!(!is_running(u32::MAX - 1, None));
    }
}
