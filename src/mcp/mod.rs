//! `reins mcp`: the fleet as tools that agents call (DESIGN §11).
//!
//! An MCP server (the official Rust SDK, `rmcp`) on stdio, the way agents
//! launch their tool servers, or on loopback HTTP when asked. Every tool is
//! a thin call into session control (`crate::control`) or the
//! orchestration engines (`crate::dispatch`, `crate::chain`): this module
//! adds the protocol — argument schemas, structured results, errors a
//! model can read, progress and cancellation of long calls, tasks — and
//! no session logic of its own.
//!
//! - [`server`]: the handler (`Fleet`), its capabilities, tasks, stdio;
//! - [`http`]: `--listen`: loopback streamable HTTP behind a bearer token;
//! - [`sessions`]: list, status, start, send, wait, screen, events, logs,
//!   interrupt, approve/deny, stop;
//! - [`orchestration`]: dispatch, dispatch_status, chain_run,
//!   chain_status, list_agents;
//! - [`progress`]: progress notifications and cancellation of long calls;
//! - [`work`]: the dispatches a server runs, stopped when it goes;
//! - [`resources`]: sessions' screens and events as resources, watched;
//! - [`reply`]: reins errors as tool results.

pub(crate) mod http;
pub(crate) mod orchestration;
pub(crate) mod progress;
pub(crate) mod reply;
pub(crate) mod resources;
pub(crate) mod server;
pub(crate) mod sessions;
pub(crate) mod work;

pub(crate) use server::{Fleet, serve_stdio};
