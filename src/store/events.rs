//! `events.jsonl`: the append-only event log of a session (DESIGN §5).
//!
//! One JSON object per line, written with a single `write` on an `O_APPEND`
//! file so concurrent readers never see half a line. The envelope
//! (`schema_version`, `run`, `seq`, `ts`, `id`, `turn`) comes first, then the
//! internally tagged payload. Readers tolerate unknown fields and unknown
//! event types: the schema only ever grows.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapter::TurnStatus;
use crate::state::{BlockedKind, State};
use crate::store::exit_record::ExitReason;
use crate::store::fsutil;
use crate::store::registry::Size;
use crate::time;
use crate::trust::{Parent, Requester};

/// Version of the event schema this build writes.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Where a tmux-hosted session's pane is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TmuxTarget {
    /// Pane id, `%N`: stable for the pane's life, unlike names.
    pub(crate) pane: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) window: Option<String>,
    /// The tmux server socket, so clients talk to the right server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) socket: Option<String>,
}

/// Payload of the `started` event (boxed in [`EventKind`]: it is by far
/// the largest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Started {
    /// The agent's pid.
    pub(crate) pid: u32,
    pub(crate) host_pid: u32,
    pub(crate) agent: String,
    pub(crate) adapter: String,
    pub(crate) transport: String,
    pub(crate) mode: String,
    pub(crate) cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tmux: Option<TmuxTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) meta: Option<Value>,
    /// The agent's terminal size at start.
    pub(crate) size: Size,
    /// Where this run's output starts in `transcript.log`.
    pub(crate) transcript_offset: u64,
    /// The session's git worktree (`run --worktree`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) worktree: Option<crate::worktree::WorktreeRecord>,
    /// The session it was started from inside (its agent ran `reins run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<Parent>,
}

/// The payload of an event. Field names of `started` and `exited` stay
/// compatible with harnex's schema 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum EventKind {
    /// The agent process is running and the host is serving its socket.
    Started(Box<Started>),
    /// The agent's terminal changed size (relayed sessions follow their
    /// terminal). Lets `logs` replay the transcript at the right widths.
    Resized { size: Size, transcript_offset: u64 },
    /// `transcript.log` reached its size limit (`run --max-log`) and was
    /// moved to `transcript.log.1`; the new file starts at logical offset
    /// `transcript_offset`. `dropped_bytes` were in the `.1` file it replaced.
    TranscriptRotated { transcript_offset: u64, dropped_bytes: u64 },
    /// The observed state changed.
    State {
        from: State,
        to: State,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<BlockedKind>,
        /// The adapter rule that produced `to`, when a rule did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
    /// A message was accepted into the session's inbox.
    Queued {
        message_id: String,
        preview: String,
        position: usize,
        /// Who sent it (absent: the host itself, e.g. a `--context` brief).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requester: Option<Requester>,
    },
    /// A message was submitted and the turn it opened was seen starting
    /// (`verified`), or forced into a busy agent (not verified).
    Delivered {
        message_id: String,
        preview: String,
        forced: bool,
        verified: bool,
        /// Milliseconds from its first byte typed to the proof (verified
        /// screen deliveries).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_ms: Option<u64>,
        /// How often the submit key was pressed (screen deliveries).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        presses: Option<u32>,
        /// The turn started after reins had called the message
        /// `stranded`: this corrects that verdict.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// A composer that held a draft (`ready{draft}`) was emptied with the
    /// profile's keys before message `message_id` was typed; `draft` is
    /// what it showed.
    DraftCleared { message_id: String, draft: String },
    /// A message was typed without submitting it (`--no-submit`).
    Typed { message_id: String, preview: String },
    /// A message was submitted but no turn started: it did not get through.
    Stranded { message_id: String, preview: String, reason: String },
    /// A queued message reached its deadline undelivered.
    Expired { message_id: String, preview: String },
    /// A queued message was removed (`reins inbox --drop/--clear`).
    Dropped { message_id: String, preview: String },
    /// A turn began (the envelope's `turn` numbers it).
    TurnStarted {
        /// The message that opened it; absent when the agent went busy on
        /// its own (someone typed in its terminal).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// A turn ended.
    TaskComplete {
        status: TurnStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The outcome rule that set a non-`completed` status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
        /// What went wrong, when the agent said (structured transports).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The agent's answer in this turn (`reins answer`): its final
        /// message on a protocol, the text it drew by the profile's
        /// `[answer]` rules on a screen. Cut at [`MAX_ANSWER`] bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
        /// How the answer was found (`codex-app-server`, `screen`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer_source: Option<String>,
        /// Bytes of the answer left out past [`MAX_ANSWER`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer_cut: Option<u64>,
    },
    /// The agent asks for approval: `request` names this request (what
    /// `reins approve --request` answers), `detail` says what it asks, as
    /// far as the agent said.
    Blocked {
        kind: BlockedKind,
        request: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// An approval dialog was answered (`by`: `client` for `reins approve`,
    /// `policy` for `run --approve auto|never`).
    Approval {
        decision: String,
        by: String,
        /// The request it answered (the `blocked` event's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requester: Option<Requester>,
    },
    /// A control request was refused for who sent it (an agent answering
    /// its own approval request, or `[policy] agents = "started"`).
    Refused { request: String, reason: String, requester: Requester },
    /// Token counts and the like, as the agent showed them (absent fields
    /// were not shown; nothing is estimated).
    Usage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_tokens: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_tokens: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cached_tokens: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning_tokens: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total_tokens: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_session_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<f64>,
        /// The rules (or transport) the figures came from.
        source: String,
    },
    /// A structured transport was lost (`will_retry`: the agent says it
    /// will try again by itself).
    Disconnected { source: String, message: String, will_retry: bool },
    /// A watcher (`reins watch`) found the session making no progress:
    /// `reason` says what it saw, `idle_s` for how long.
    Stall {
        idle_s: f64,
        state: State,
        reason: String,
        /// How the last progress was seen (`protocol`, `turn`, `screen`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<String>,
    },
    /// A watcher nudged a stalled session, the `n`th time of at most `max`
    /// (`by`: `rules` or `advisor`): it interrupted the turn if one was
    /// open and queued `message_id`.
    Resume {
        n: u32,
        max: u32,
        by: String,
        interrupted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// A watcher started the session again after its agent ended badly
    /// (the first event of the new run after `started`), the `n`th time of
    /// at most `max`.
    Restart {
        n: u32,
        max: u32,
        by: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_run: Option<String>,
    },
    /// A watcher gave up and left the session as it is: it needs a person.
    Escalate { reason: String, by: String },
    /// The git repository of the session's cwd: where it stood when the
    /// run started (`phase: start`), and what changed by its end (`phase:
    /// end`: commits made, files and lines changed against the start
    /// commit). Absent outside a repository.
    Git {
        phase: GitPhase,
        sha: String,
        branch: String,
        dirty: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commits: Option<u64>,
        /// The counts include uncommitted work (the tree was clean at the
        /// start); otherwise they cover commits since the start only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        counts_uncommitted: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files_changed: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loc_added: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loc_removed: Option<u64>,
    },
    /// The run in numbers, just before `exited`: what the dispatch record
    /// holds. Token counts are sums of the run's `usage` events, null when
    /// the agent never showed them.
    Summary(Box<Summary>),
    /// The agent hit a usage or rate limit (`source`: `screen` or
    /// `protocol`): the session reads `blocked{rate_limit}` until `until`
    /// (when known) and takes no messages; they wait in the inbox.
    RateLimited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The limit's reset time passed; `resumed` when reins then sent the
    /// resume message (`run --on-rate-limit resume`, or a watcher).
    RateLimitLifted {
        resumed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// Someone asked the running turn to stop (`reins interrupt`).
    InterruptRequested {
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requester: Option<Requester>,
    },
    /// Someone asked the session to stop; `source` says who.
    StopRequested {
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requester: Option<Requester>,
    },
    /// A client asked for the resume message to be sent when the usage
    /// limit in force lifts (`reins watch`).
    ResumeArmed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requester: Option<Requester>,
    },
    /// The stop sequence escalated to a signal.
    Signalled { signal: String, reason: String },
    /// The agent process is gone; always the last event of a run.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        reason: ExitReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// An event type this build does not know (written by a newer reins).
    #[serde(other)]
    Other,
}

impl EventKind {
    /// The events a watcher may ask a host to write (`POST /v1/note`).
    pub(crate) fn is_watcher_note(&self) -> bool {
        matches!(
            self,
            EventKind::Stall { .. }
                | EventKind::Resume { .. }
                | EventKind::Restart { .. }
                | EventKind::Escalate { .. }
        )
    }
}

/// Which end of a run a `git` event describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GitPhase {
    Start,
    End,
}

/// Payload of the `summary` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Where the dispatch record line went; null when none was written.
    pub(crate) path: Option<String>,
    pub(crate) exit: Option<ExitReason>,
    pub(crate) duration_s: f64,
    pub(crate) turns: u64,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cached_tokens: Option<u64>,
    pub(crate) reasoning_tokens: Option<u64>,
    pub(crate) total_tokens: Option<u64>,
    pub(crate) stalls: u32,
    pub(crate) resumes: u32,
    pub(crate) restarts: u32,
    pub(crate) disconnections: u32,
}

#[derive(Serialize)]
struct Envelope<'a> {
    schema_version: u32,
    run: &'a str,
    seq: u64,
    ts: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn: Option<u64>,
}

/// Appends events of one run of one session.
#[derive(Debug)]
pub(crate) struct EventWriter {
    file: File,
    run: String,
    id: String,
    seq: u64,
    /// Inode of the log, and its length as far as this writer knows.
    ino: u64,
    len: u64,
}

impl EventWriter {
    pub(crate) fn open(path: &Path, run: &str, id: &str) -> io::Result<Self> {
        let file = fsutil::open_jsonl(path)?;
        let meta = file.metadata()?;
        Ok(EventWriter {
            file,
            run: run.into(),
            id: id.into(),
            seq: 0,
            ino: std::os::unix::fs::MetadataExt::ino(&meta),
            len: meta.len(),
        })
    }

    /// Inode and length of the log (what followers compare with). Only the
    /// live host writes the log of a live session, so the count is exact.
    pub(crate) fn file_state(&self) -> (u64, u64) {
        (self.ino, self.len)
    }

    /// Runs `f` holding the log's exclusive lock, if no reader holds it
    /// (`None` then). The transcript rotates under it (see
    /// [`crate::store::transcript`]).
    pub(crate) fn with_exclusive_lock<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> T,
    ) -> io::Result<Option<T>> {
        match self.file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(err)) => return Err(err),
        }
        let result = f(self);
        self.file.unlock()?;
        Ok(Some(result))
    }

    /// A writer that continues `run` after its event `last_seq` (used by
    /// `gc` to close the log of a run whose host died).
    pub(crate) fn continue_run(
        path: &Path,
        run: &str,
        id: &str,
        last_seq: u64,
    ) -> io::Result<Self> {
        let mut writer = EventWriter::open(path, run, id)?;
        writer.seq = last_seq;
        Ok(writer)
    }

    /// Writes one event and returns its line (without the newline).
    pub(crate) fn emit(&mut self, turn: Option<u64>, kind: &EventKind) -> io::Result<String> {
        self.emit_payload(turn, kind)
    }

    /// Writes one event of another log that shares the envelope (the
    /// dispatcher's own log); `payload` must serialize to an object.
    pub(crate) fn emit_payload(
        &mut self,
        turn: Option<u64>,
        payload: &impl Serialize,
    ) -> io::Result<String> {
        self.seq += 1;
        let ts = time::now_rfc3339();
        let line = encode(
            &Envelope {
                schema_version: SCHEMA_VERSION,
                run: &self.run,
                seq: self.seq,
                ts: &ts,
                id: &self.id,
                turn,
            },
            payload,
        );
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        // One write of the whole line: O_APPEND makes it atomic with respect
        // to other appenders, and readers never see a partial line.
        self.file.write_all(&buf)?;
        self.len += buf.len() as u64;
        Ok(line)
    }
}

/// Joins the envelope object and the payload object into one object, the
/// envelope's fields first. Both are plain structs serialized by serde_json,
/// so `{a}` + `{b}` → `{a,b}` is exact.
fn encode(envelope: &Envelope<'_>, kind: &impl Serialize) -> String {
    let head = serde_json::to_string(envelope).expect("envelope serializes");
    let body = serde_json::to_string(kind).expect("event serializes");
    let mut line = head;
    line.pop(); // '}'
    line.push(',');
    line.push_str(&body[1..]); // skip '{'
    line
}

/// The envelope of an event as read back.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EventHeader {
    #[serde(default)]
    pub(crate) run: String,
    #[serde(default)]
    pub(crate) seq: u64,
    #[serde(default)]
    pub(crate) ts: String,
    #[serde(default)]
    pub(crate) turn: Option<u64>,
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
}

/// One parsed line of `events.jsonl`, with the original text kept so it can
/// be printed unchanged (unknown fields included).
#[derive(Debug, Clone)]
pub(crate) struct EventLine {
    pub(crate) header: EventHeader,
    pub(crate) kind: EventKind,
    pub(crate) raw: String,
}

impl EventLine {
    /// Parses a line; `None` for a line that is not an event object.
    pub(crate) fn parse(raw: &str) -> Option<EventLine> {
        let header: EventHeader = serde_json::from_str(raw).ok()?;
        let kind = serde_json::from_str(raw).unwrap_or(EventKind::Other);
        Some(EventLine { header, kind, raw: raw.to_string() })
    }
}

impl EventKind {
    /// The event's `type`. Every variant is listed, so a new one cannot be
    /// added without a name here (and, by the test below, in
    /// docs/events.md).
    #[cfg(test)]
    fn type_name(&self) -> &'static str {
        match self {
            EventKind::Started(_) => "started",
            EventKind::Resized { .. } => "resized",
            EventKind::TranscriptRotated { .. } => "transcript_rotated",
            EventKind::State { .. } => "state",
            EventKind::Queued { .. } => "queued",
            EventKind::Delivered { .. } => "delivered",
            EventKind::Typed { .. } => "typed",
            EventKind::DraftCleared { .. } => "draft_cleared",
            EventKind::Stranded { .. } => "stranded",
            EventKind::Expired { .. } => "expired",
            EventKind::Dropped { .. } => "dropped",
            EventKind::TurnStarted { .. } => "turn_started",
            EventKind::TaskComplete { .. } => "task_complete",
            EventKind::Blocked { .. } => "blocked",
            EventKind::Approval { .. } => "approval",
            EventKind::Refused { .. } => "refused",
            EventKind::Usage { .. } => "usage",
            EventKind::Disconnected { .. } => "disconnected",
            EventKind::Stall { .. } => "stall",
            EventKind::Resume { .. } => "resume",
            EventKind::Restart { .. } => "restart",
            EventKind::Escalate { .. } => "escalate",
            EventKind::Git { .. } => "git",
            EventKind::Summary(_) => "summary",
            EventKind::RateLimited { .. } => "rate_limited",
            EventKind::RateLimitLifted { .. } => "rate_limit_lifted",
            EventKind::InterruptRequested { .. } => "interrupt_requested",
            EventKind::StopRequested { .. } => "stop_requested",
            EventKind::ResumeArmed { .. } => "resume_armed",
            EventKind::Signalled { .. } => "signalled",
            EventKind::Exited { .. } => "exited",
            EventKind::Other => "other",
        }
    }

    /// A `usage` event from fields read off the screen (see
    /// [`crate::adapter::read_usage`]); numbers may carry thousands commas,
    /// durations units (`1m 5s`).
    pub(crate) fn usage(
        fields: &std::collections::BTreeMap<String, String>,
        source: String,
    ) -> EventKind {
        let num = |k: &str| fields.get(k).and_then(|v| v.replace(',', "").parse::<u64>().ok());
        EventKind::Usage {
            input_tokens: num("input_tokens"),
            output_tokens: num("output_tokens"),
            cached_tokens: num("cached_tokens"),
            reasoning_tokens: num("reasoning_tokens"),
            total_tokens: num("total_tokens"),
            agent_session_id: fields.get("agent_session_id").cloned(),
            duration_s: fields.get("duration_s").and_then(|v| seconds(v)),
            source,
        }
    }
}

/// `3`, `3s`, `303ms`, `1m 5s`, `2h 1m 3s` → seconds.
fn seconds(text: &str) -> Option<f64> {
    let mut total = 0.0;
    for part in text.split_whitespace() {
        let (n, unit) =
            part.find(|c: char| c.is_ascii_alphabetic()).map_or((part, "s"), |i| part.split_at(i));
        let n: f64 = n.parse().ok()?;
        total += n * match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
    }
    Some(total)
}

/// A message as events show it: whitespace collapsed, at most 80 characters.
/// Longest answer a `task_complete` event keeps, in bytes.
pub(crate) const MAX_ANSWER: usize = 64 << 10;

/// A turn's answer as the host found it, before it goes into the
/// `task_complete` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundAnswer {
    pub(crate) text: String,
    /// How it was found (`codex-app-server`, `claude-stream-json`, `acp`,
    /// `screen`).
    pub(crate) source: String,
    /// Bytes left out (past [`MAX_ANSWER`], or already by the transport).
    pub(crate) cut: u64,
}

impl FoundAnswer {
    /// `text` cut to [`MAX_ANSWER`] on a character boundary; `cut` counts
    /// what was left out before (a transport's own cap) and here.
    pub(crate) fn new(text: &str, source: &str, cut: u64) -> FoundAnswer {
        let mut end = text.len().min(MAX_ANSWER);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        FoundAnswer {
            text: text[..end].to_string(),
            source: source.to_string(),
            cut: cut + (text.len() - end) as u64,
        }
    }
}

impl EventKind {
    /// A `task_complete` event, with the turn's answer if one was found.
    pub(crate) fn task_complete(
        status: crate::adapter::TurnStatus,
        message_id: Option<String>,
        outcome: Option<String>,
        error: Option<String>,
        answer: Option<FoundAnswer>,
    ) -> EventKind {
        let (answer, answer_source, answer_cut) = match answer {
            Some(a) => (Some(a.text), Some(a.source), (a.cut > 0).then_some(a.cut)),
            None => (None, None, None),
        };
        EventKind::TaskComplete {
            status,
            message_id,
            outcome,
            error,
            answer,
            answer_source,
            answer_cut,
        }
    }
}

pub(crate) fn preview(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 80 {
        flat
    } else {
        format!("{}…", flat.chars().take(79).collect::<String>())
    }
}

/// Reads every event in `path` (an absent file has none).
pub(crate) fn read_all(path: &Path) -> io::Result<Vec<EventLine>> {
    read_all_with_offset(path).map(|(events, _)| events)
}

/// Reads every complete line of `path`, and the byte offset just after the
/// last one: where to start following for what comes next.
pub(crate) fn read_all_with_offset(path: &Path) -> io::Result<(Vec<EventLine>, u64)> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(err) => return Err(err),
    };
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..end]);
    Ok((text.lines().filter_map(EventLine::parse).collect(), end as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/events.md is the schema users read: every type it lists is one
    /// this code writes, every type this code writes is listed, and every
    /// example line parses as its type and serializes back the same.
    #[test]
    fn docs_events_md_lists_exactly_the_types_the_code_writes() {
        // A chain's log, at the end, has its own types (chain::runner checks them).
        let doc = include_str!("../../docs/events.md").split("\n## A chain's log").next().unwrap();
        let listed: std::collections::BTreeSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split_once('`').map(|(t, _)| t))
            .filter(|t| {
                !matches!(*t, "schema_version" | "run" | "seq" | "ts" | "id" | "turn" | "type")
            })
            .collect();
        let examples: Vec<&str> = doc
            .split("```json\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_default()
            .lines()
            .collect();
        let mut shown = std::collections::BTreeSet::new();
        for line in &examples {
            let event = EventLine::parse(line).unwrap_or_else(|| panic!("not an event: {line}"));
            let name = event.kind.type_name();
            assert_ne!(name, "other", "an example of a type the code does not know: {line}");
            let written: Value = serde_json::to_value(&event.kind).unwrap();
            let original: Value = serde_json::from_str(line).unwrap();
            for (key, value) in written.as_object().unwrap() {
                assert_eq!(&original[key], value, "{name}: field {key} of {line}");
            }
            shown.insert(name);
        }
        assert_eq!(listed, shown, "the table and the examples of docs/events.md differ");
        // Every variant has a name, and every name is listed.
        let all = [
            "started",
            "resized",
            "transcript_rotated",
            "state",
            "queued",
            "delivered",
            "typed",
            "draft_cleared",
            "stranded",
            "expired",
            "dropped",
            "turn_started",
            "task_complete",
            "blocked",
            "approval",
            "refused",
            "usage",
            "disconnected",
            "stall",
            "resume",
            "restart",
            "escalate",
            "git",
            "summary",
            "rate_limited",
            "rate_limit_lifted",
            "interrupt_requested",
            "stop_requested",
            "resume_armed",
            "signalled",
            "exited",
        ];
        assert_eq!(listed, all.into_iter().collect(), "docs/events.md and EventKind differ");
    }

    #[test]
    fn lines_carry_the_envelope_first_and_parse_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.jsonl");
        let mut w = EventWriter::open(&path, "r1", "cx-1").unwrap();
        w.emit(None, &EventKind::StopRequested { source: "client".into(), requester: None })
            .unwrap();
        let line = w
            .emit(
                Some(3),
                &EventKind::State {
                    from: State::Ready,
                    to: State::Blocked,
                    kind: Some(BlockedKind::Approval),
                    rule: Some("approval".into()),
                },
            )
            .unwrap();
        assert!(line.starts_with(r#"{"schema_version":1,"run":"r1","seq":2,"ts":""#), "{line}");
        assert!(line.contains(r#""id":"cx-1","turn":3,"type":"state","from":"ready""#), "{line}");

        let all = read_all(&path).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].header.seq, 2);
        assert!(matches!(all[1].kind, EventKind::State { to: State::Blocked, .. }));
    }

    #[test]
    fn usage_fields_are_parsed_not_guessed() {
        let fields: std::collections::BTreeMap<String, String> = [
            ("input_tokens", "12,345"),
            ("duration_s", "1m 5s 500ms"),
            ("agent_session_id", "abc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match EventKind::usage(&fields, "r".into()) {
            EventKind::Usage {
                input_tokens, output_tokens, duration_s, agent_session_id, ..
            } => {
                assert_eq!(input_tokens, Some(12345));
                assert_eq!(output_tokens, None, "not shown means null");
                assert_eq!(duration_s, Some(65.5));
                assert_eq!(agent_session_id.as_deref(), Some("abc"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_types_and_fields_are_tolerated() {
        let line = r#"{"schema_version":1,"run":"r","seq":9,"ts":"t","id":"x","type":"from_the_future","x":1}"#;
        let ev = EventLine::parse(line).unwrap();
        assert_eq!(ev.kind, EventKind::Other);
        assert_eq!(ev.header.kind, "from_the_future");
        let line = r#"{"schema_version":1,"run":"r","seq":1,"ts":"t","id":"x","type":"stop_requested","source":"c","new_field":[1]}"#;
        assert!(matches!(EventLine::parse(line).unwrap().kind, EventKind::StopRequested { .. }));
        assert!(EventLine::parse("not json").is_none());
    }
}
