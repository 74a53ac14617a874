//! The offline mock model server on its own, for pointing a real agent CLI
//! at it by hand (the end-to-end tests start the same module in-process):
//!
//! ```text
//! cargo run --example mock_model -- --port 8765 --log requests.jsonl
//! OPENAI-style:    base_url = "http://127.0.0.1:8765/v1"   (Codex, wire_api = "responses")
//! Anthropic-style: ANTHROPIC_BASE_URL=http://127.0.0.1:8765 (Claude Code)
//! Gemini-style:    GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8765 (Gemini CLI)
//! ```
//!
//! Serves until killed. See `tests/support/mock_model.rs` for the routes
//! and the prompt markers (`[[wait:N]]`, `[[slow:N]]`, `[[run:CMD]]`,
//! `[[runx:CMD]]`, `[[error:NNN]]`).

#[path = "../tests/support/mock_model.rs"]
mod mock_model;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use mock_model::{MockConfig, MockModel};

/// Offline mock of the OpenAI, Anthropic and Gemini model APIs, for driving
/// real agent CLIs without a network.
#[derive(Parser)]
struct Args {
    /// Address to bind; only the loopback address is accepted.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Append every request as a JSON line to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// First word of the default answer.
    #[arg(long, default_value = "MOCK_OK")]
    reply: String,
    /// Default seconds to spread each streamed answer over.
    #[arg(long, default_value_t = 0.0)]
    delay: f64,
    /// Print each request line and status to stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !matches!(args.host.as_str(), "127.0.0.1" | "localhost") {
        eprintln!("refusing to bind a non-loopback address: {}", args.host);
        return ExitCode::from(2);
    }
    let config = MockConfig {
        port: args.port,
        log: args.log,
        reply: args.reply,
        delay: args.delay,
        verbose: args.verbose,
    };
    let mock = match MockModel::start_with(config) {
        Ok(mock) => mock,
        Err(err) => {
            eprintln!("failed to start the mock model on 127.0.0.1:{}: {err}", args.port);
            return ExitCode::FAILURE;
        }
    };
    println!("mock model listening on {}", mock.base_url());
    loop {
        std::thread::park();
    }
}
