//! The agent's input: one task owns writing to the PTY.
//!
//! Keystrokes from a relayed terminal, answers to terminal queries and
//! adapter sequences (the polite stop, later message delivery) all go
//! through this queue, so they never interleave mid-sequence and the host's
//! main loop never blocks on an agent that stopped reading its input.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::adapter::Step;
use crate::host::pty::Pty;

/// One unit of input for the agent.
#[derive(Debug)]
pub(crate) enum Input {
    /// Bytes written as they are.
    Bytes(Vec<u8>),
    /// An adapter sequence, played step by step with its pauses.
    Sequence(Vec<Step>),
    /// Bytes whose writing is reported back with `token` (message delivery
    /// needs to know when its text and its key are in).
    Tracked { bytes: Vec<u8>, token: u64 },
}

/// The sending side of the agent's input queue.
pub(crate) type InputQueue = mpsc::UnboundedSender<Input>;

/// Starts the task that owns the PTY's write side. `agent_pid` is the
/// process group that `signal` steps go to. Tokens of written
/// [`Input::Tracked`] inputs come back on the returned receiver.
pub(crate) fn spawn_writer(
    pty: Arc<Pty>,
    agent_pid: u32,
) -> (InputQueue, mpsc::UnboundedReceiver<u64>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let (done_tx, done) = mpsc::unbounded_channel::<u64>();
    tokio::spawn(async move {
        while let Some(input) = rx.recv().await {
            let result = match input {
                Input::Bytes(bytes) => pty.write_all(&bytes).await,
                Input::Sequence(steps) => play(&pty, agent_pid, &steps).await,
                Input::Tracked { bytes, token } => {
                    let result = pty.write_all(&bytes).await;
                    let _ = done_tx.send(token);
                    result
                }
            };
            if let Err(err) = result {
                // The agent is gone or its terminal closed; later input has
                // nowhere to go either.
                tracing::debug!("agent input closed: {err}");
                break;
            }
        }
    });
    (tx, done)
}

async fn play(pty: &Pty, agent_pid: u32, steps: &[Step]) -> std::io::Result<()> {
    for step in steps {
        match step {
            Step::Text(text) => pty.write_all(text.as_bytes()).await?,
            Step::Key(key) => pty.write_all(key.bytes()).await?,
            Step::PauseMs(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Step::Signal(name) => {
                if let Some(sig) = crate::procs::signal_by_name(name) {
                    crate::procs::signal_tree(agent_pid, sig);
                }
            }
        }
    }
    Ok(())
}
