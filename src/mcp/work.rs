//! Dispatches this server runs: each on a thread of its own (the
//! dispatcher drives its sessions on a single-threaded runtime), told to
//! stop when its call is cancelled, and all of them stopped — with every
//! session they started — before the server exits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::dispatch::{self, Ending, Plan, Summary};
use crate::store::outcomes::Store;
use crate::store::paths::StateRoot;

/// The running dispatches.
#[derive(Default)]
pub(crate) struct Work {
    running: Mutex<HashMap<String, Running>>,
}

struct Running {
    cancel: Arc<watch::Sender<Option<Ending>>>,
    thread: std::thread::JoinHandle<()>,
}

/// A dispatch under way.
pub(crate) struct Dispatching {
    pub(crate) id: String,
    cancel: Arc<watch::Sender<Option<Ending>>>,
    /// Every event of its log, as written.
    pub(crate) events: mpsc::UnboundedReceiver<Value>,
    /// Its end.
    pub(crate) done: oneshot::Receiver<std::io::Result<Summary>>,
}

impl Dispatching {
    /// Tells it to stop: it ends `interrupted` once it stopped its sessions.
    pub(crate) fn cancel(&self) {
        let _ = self.cancel.send(Some(Ending::Interrupted));
    }
}

impl Work {
    /// Starts `plan` on a thread of its own.
    pub(crate) fn dispatch(
        self: &Arc<Self>,
        plan: Plan,
        state: StateRoot,
    ) -> std::io::Result<Dispatching> {
        let id = plan.id.clone();
        let mut running = self.running.lock().expect("work lock");
        if running.contains_key(&id) {
            return Err(std::io::Error::other(format!(
                "dispatch {id} is already running in this server"
            )));
        }
        let (cancel, cancelled) = watch::channel(None);
        let cancel = Arc::new(cancel);
        let (events_tx, events) = mpsc::unbounded_channel();
        let (done_tx, done) = oneshot::channel();
        let work = Arc::clone(self);
        let thread_id = id.clone();
        let thread =
            std::thread::Builder::new().name(format!("dispatch-{id}")).spawn(move || {
                let tap: dispatch::Tap = std::rc::Rc::new(move |event: &Value| {
                    let _ = events_tx.send(event.clone());
                });
                let result = match Store::open_in(&state) {
                    Ok(store) => crate::control::runtime().block_on(dispatch::drive(
                        plan,
                        state,
                        store,
                        cancelled,
                        Some(tap),
                    )),
                    Err(err) => Err(std::io::Error::other(err.to_string())),
                };
                let _ = done_tx.send(result);
                work.running.lock().expect("work lock").remove(&thread_id);
            })?;
        running.insert(id.clone(), Running { cancel: Arc::clone(&cancel), thread });
        Ok(Dispatching { id, cancel, events, done })
    }

    /// Whether this server runs dispatch `id` now.
    pub(crate) fn is_running(&self, id: &str) -> bool {
        self.running.lock().expect("work lock").contains_key(id)
    }

    /// Interrupts every running dispatch and waits until each has stopped
    /// its sessions.
    pub(crate) async fn stop_all(&self) {
        let running: Vec<Running> =
            self.running.lock().expect("work lock").drain().map(|(_, r)| r).collect();
        if running.is_empty() {
            return;
        }
        for r in &running {
            let _ = r.cancel.send(Some(Ending::Interrupted));
        }
        let _ = tokio::task::spawn_blocking(move || {
            for r in running {
                let _ = r.thread.join();
            }
        })
        .await;
    }
}
