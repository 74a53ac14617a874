//! `reins mcp`: serve the fleet to an MCP client (an agent).

use crate::error::{CliResult, code};
use crate::store::paths::StateRoot;

/// Serve reins to an agent as MCP tools: the agent starts workers, hands
/// them tasks, waits for their turns and reads their answers without
/// scraping a terminal.
///
/// Agents start it themselves and talk to it on stdin and stdout. With
/// `--listen 127.0.0.1:PORT` it serves streamable HTTP on the loopback
/// interface instead, to clients that send the bearer token it writes to
/// a file (mode 0600) in the runtime directory.
///
/// A session started through it records the calling session (when the
/// agent is itself a reins session) as its parent, and an agent cannot
/// approve its own requests through it. `wait`, `send_message` and
/// `dispatch` report progress, honour cancellation, and run as tasks for
/// clients of the MCP tasks extension.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Set up (the agent starts `reins mcp` itself):
  claude mcp add reins -- reins mcp
  codex:  ~/.codex/config.toml   [mcp_servers.reins]
                                 command = \"reins\"
                                 args = [\"mcp\"]
  gemini: ~/.gemini/settings.json  \"mcpServers\": {\"reins\": {\"command\": \"reins\", \"args\": [\"mcp\"]}}

Tools (`reins agents-guide mcp` says when to use which):
  list_sessions, session_status       where sessions stand
  start_session                       start a worker (agent, id, cwd, worktree, first task)
  send_message                        hand it a message: verified delivery, message id, turn
  wait                                until task_complete, a state or exit; with a timeout
  read_screen, read_events, read_logs its screen, its events from a cursor, its output
  interrupt                           stop its running turn
  approve, deny                       answer its pending approval request
  stop_session                        stop it and everything it started
  dispatch, dispatch_status           one task to an available agent, checked, failed over
  chain_run, chain_status             a chain file of such steps
  list_agents                         which agents can take a task now

Resources: reins://sessions/ID/screen (text) and reins://sessions/ID/events
(JSON lines), with change notifications for subscribers.

Examples:
  reins mcp
  reins mcp --listen 127.0.0.1:8765
  npx @modelcontextprotocol/inspector-cli --cli reins mcp --method tools/list

Logs go to stderr (REINS_LOG=debug for more); stdout is the protocol's.

Exit codes: 0 the client closed the connection (or, listening, a signal
ended it), 1 the client never initialized, 2 bad input (a --listen address
that is not loopback).")]
pub(crate) struct Args {
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio: a
    /// loopback address and port (127.0.0.1:PORT, [::1]:PORT,
    /// localhost:PORT; port 0 picks a free one). Clients send
    /// `Authorization: Bearer TOKEN`, TOKEN being the content of the file
    /// named on stderr ($XDG_RUNTIME_DIR/reins/mcp/ADDR-PORT.token).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub(crate) fn run(args: Args) -> CliResult {
    init_logging();
    let listen = args.listen.as_deref().map(crate::mcp::http::parse_listen).transpose()?;
    let state = StateRoot::from_env()?;
    state.ensure()?;
    let fleet = crate::mcp::Fleet::new(state);
    match listen {
        Some(addr) => crate::cli::runtime().block_on(crate::mcp::http::serve(fleet, addr))?,
        None => crate::cli::runtime().block_on(crate::mcp::serve_stdio(fleet))?,
    }
    Ok(code::OK)
}

/// Logs on stderr, quiet unless REINS_LOG asks (stdout carries the
/// protocol).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REINS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::server::Fleet;

    /// `reins mcp --help` names every tool the server has: a tool added
    /// without a line there fails here.
    #[test]
    fn every_tool_is_named_in_the_help() {
        let tmp = tempfile::tempdir().unwrap();
        let fleet = Fleet::new(StateRoot::from_parts(tmp.path().join("s"), tmp.path().join("r")));
        let mut cli = crate::cli::command();
        let help = cli.find_subcommand_mut("mcp").unwrap().render_long_help().to_string();
        let tools = fleet.tool_list();
        assert!(tools.len() >= 17, "{tools:?}");
        for tool in tools {
            let named = regex::Regex::new(&format!(r"\b{}\b", tool.name)).unwrap();
            assert!(named.is_match(&help), "{} is not in `reins mcp --help`:\n{help}", tool.name);
        }
    }
}
