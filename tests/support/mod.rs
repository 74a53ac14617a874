//! Test support for live runs of the real agent CLIs (a mock model server
//! on 127.0.0.1 and seeded, isolated homes for each CLI) and for the MCP
//! server (real MCP clients), private sshd servers for `--host`, and
//! `reins top` in a tmux pane.

pub mod agents;
pub mod dashboard;
pub mod live;
pub mod mcp;
pub mod mock_model;
pub mod sshd;
