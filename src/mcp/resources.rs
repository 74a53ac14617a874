//! A session's screen and events as MCP resources, and change
//! notifications for the ones a client subscribes to.
//!
//! `reins://sessions/ID/screen` is the screen as text; it changes when the
//! screen settles after new output (the host's long poll says so, no
//! timer). `reins://sessions/ID/events` is the latest run's event log as
//! JSON lines; it changes with every event written. A client subscribes
//! with `resources/subscribe` (or, from protocol 2026-07-28 on, through
//! `subscriptions/listen`) and hears `notifications/resources/updated`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::ErrorData;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::control::events;
use crate::control::lookup::{self, SessionView};
use crate::control::session as ops;
use crate::control::status::{self, Which};
use crate::mcp::Fleet;
use crate::store::stream::EventStream;

/// The events a read of the events resource gives at most (the latest).
const EVENTS_READ: usize = 500;

/// What of a session a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Screen,
    Events,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Screen => "screen",
            Part::Events => "events",
        }
    }
}

/// `reins://sessions/ID/PART`.
pub(crate) fn uri(id: &str, part: Part) -> String {
    format!("reins://sessions/{id}/{}", part.as_str())
}

/// The session and part a URI names.
pub(crate) fn parse(uri: &str) -> Option<(String, Part)> {
    let rest = uri.strip_prefix("reins://sessions/")?;
    let (id, part) = rest.split_once('/')?;
    let part = match part {
        "screen" => Part::Screen,
        "events" => Part::Events,
        _ => return None,
    };
    crate::ids::validate(id).ok()?;
    Some((id.to_string(), part))
}

fn not_found(uri: &str, why: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("{uri}: {why}"), Some(serde_json::json!({"uri": uri})))
}

/// The resource watches of one client: one task per subscribed URI.
#[derive(Default)]
pub(crate) struct Subscriptions {
    watching: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Subscriptions {
    pub(crate) fn add(&self, uri: String, task: JoinHandle<()>) {
        if let Some(old) = self.watching.lock().expect("subscriptions lock").insert(uri, task) {
            old.abort();
        }
    }

    pub(crate) fn remove(&self, uri: &str) {
        if let Some(task) = self.watching.lock().expect("subscriptions lock").remove(uri) {
            task.abort();
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for (_, task) in self.watching.lock().expect("subscriptions lock").drain() {
            task.abort();
        }
    }
}

/// A handle the resources of one client share.
pub(crate) type Shared = Arc<Subscriptions>;

impl Fleet {
    /// The screen and events of every running session.
    pub(crate) fn resources(&self) -> Result<ListResourcesResult, ErrorData> {
        let listing = status::list(&self.state, Which::Running { all: true, repo: None })
            .map_err(|err| ErrorData::internal_error(err.message, None))?;
        let mut resources = Vec::new();
        for s in &listing.sessions {
            let what = s.description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            resources.push(
                Resource::new(uri(&s.id, Part::Screen), format!("{} screen", s.id))
                    .with_description(format!("the screen of session {}{what}, as text", s.id))
                    .with_mime_type("text/plain"),
            );
            resources.push(
                Resource::new(uri(&s.id, Part::Events), format!("{} events", s.id))
                    .with_description(format!(
                        "the event log of session {}'s latest run, as JSON lines",
                        s.id
                    ))
                    .with_mime_type("application/x-ndjson"),
            );
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    /// The URI templates of the resources.
    pub(crate) fn resource_templates(&self) -> ListResourceTemplatesResult {
        ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("reins://sessions/{id}/screen", "session screen")
                .with_description("a session's screen, row by row, as text")
                .with_mime_type("text/plain"),
            ResourceTemplate::new("reins://sessions/{id}/events", "session events")
                .with_description("a session's latest run's events, as JSON lines")
                .with_mime_type("application/x-ndjson"),
        ])
    }

    fn resource_session(&self, uri: &str) -> Result<(SessionView, Part), ErrorData> {
        let (id, part) = parse(uri).ok_or_else(|| {
            not_found(uri, "not a reins resource (reins://sessions/ID/screen or /events)")
        })?;
        let view =
            lookup::find(&self.state, &id, None).map_err(|err| not_found(uri, &err.message))?;
        Ok((view, part))
    }

    /// Reads a resource.
    pub(crate) async fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let (view, part) = self.resource_session(uri)?;
        let text = match part {
            Part::Screen => {
                let screen = ops::screen(&view, None)
                    .await
                    .map_err(|err| not_found(uri, &err.message))?
                    .ok_or_else(|| not_found(uri, "the session ended"))?;
                let mut rows = screen.rows;
                while rows.last().is_some_and(|r| r.trim().is_empty()) {
                    rows.pop();
                }
                rows.join("\n")
            }
            Part::Events => {
                let all = events::read(
                    &view,
                    &events::Filter { run: events::last_run(&view), ..Default::default() },
                )
                .map_err(|err| not_found(uri, &err.message))?;
                let from = all.len().saturating_sub(EVENTS_READ);
                all[from..].iter().map(|e| format!("{}\n", e.raw)).collect()
            }
        };
        let mime = if part == Part::Screen { "text/plain" } else { "application/x-ndjson" };
        let contents = ResourceContents::text(text, uri.to_string()).with_mime_type(mime);
        Ok(ReadResourceResult::new(vec![contents]))
    }

    /// Starts watching a resource: `changed` hears its URI whenever it
    /// changes, until the task is aborted or the session ends.
    pub(crate) fn watch(
        &self,
        uri: &str,
        changed: mpsc::UnboundedSender<String>,
    ) -> Result<JoinHandle<()>, ErrorData> {
        let (view, part) = self.resource_session(uri)?;
        let uri = uri.to_string();
        Ok(tokio::spawn(async move {
            match part {
                Part::Screen => {
                    let mut version = match ops::screen(&view, None).await {
                        Ok(Some(screen)) => screen.version,
                        _ => return,
                    };
                    // The host answers as soon as the screen differs.
                    while let Ok(Some(screen)) = ops::screen(&view, Some(version)).await {
                        version = screen.version;
                        if changed.send(uri.clone()).is_err() {
                            return;
                        }
                    }
                }
                Part::Events => {
                    let mut stream = EventStream::from_end(&view.paths);
                    while let Ok(Some(_)) = stream.next().await {
                        if changed.send(uri.clone()).is_err() {
                            return;
                        }
                    }
                }
            }
        }))
    }
}

/// Aborts the task when dropped (a watch that ends with its subscription).
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_a_session_and_a_part() {
        for part in [Part::Screen, Part::Events] {
            assert_eq!(parse(&uri("w-1", part)), Some(("w-1".to_string(), part)));
        }
        for bad in [
            "reins://sessions/w1/secrets",
            "reins://sessions/w1",
            "reins://sessions/../screen",
            "reins://sessions/a/b/screen",
            "file:///etc/passwd",
            "reins://sessions//screen",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
