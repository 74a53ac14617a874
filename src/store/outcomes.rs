//! `$REINS_STATE_DIR/reins.db`: what dispatches tried and how it went, and
//! what probes found, for routing and for people.
//!
//! SQLite (bundled), one file, 0600. WAL mode and a busy timeout, so many
//! dispatchers can write at once. The schema is versioned: each migration
//! runs once, in order, and is recorded in `schema_migrations`; a database
//! from a newer reins (a version this build does not know) is refused
//! rather than misread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::store::fsutil;

/// The migrations, in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    // 1: attempts, probes, cooldowns.
    "CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dispatch TEXT NOT NULL,
        n INTEGER NOT NULL,
        task_hash TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '[]',
        agent TEXT NOT NULL,
        model TEXT,
        rung INTEGER,
        session TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        duration_s REAL,
        tokens INTEGER,
        result TEXT NOT NULL DEFAULT 'running',
        reason TEXT,
        verdict TEXT,
        feedback TEXT,
        verifier TEXT,
        checks TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX attempts_by_dispatch ON attempts (dispatch, n);
    CREATE INDEX attempts_by_agent ON attempts (agent, started_at);
    CREATE TABLE probes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        model TEXT,
        session TEXT NOT NULL,
        started_at TEXT NOT NULL,
        latency_s REAL,
        ok INTEGER NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX probes_by_agent ON probes (agent, started_at);
    CREATE TABLE cooldowns (
        agent TEXT PRIMARY KEY,
        until_unix REAL NOT NULL,
        reason TEXT NOT NULL,
        set_at TEXT NOT NULL
    );",
    // 2: a cooldown belongs to an agent and, when the agent did its work
    // but the task was not done, to that task only (`task`: its hash; ''
    // for the whole agent).
    "CREATE TABLE cooldowns_v2 (
        agent TEXT NOT NULL,
        task TEXT NOT NULL DEFAULT '',
        until_unix REAL NOT NULL,
        reason TEXT NOT NULL,
        set_at TEXT NOT NULL,
        PRIMARY KEY (agent, task)
    );
    INSERT INTO cooldowns_v2 (agent, task, until_unix, reason, set_at)
        SELECT agent, '', until_unix, reason, set_at FROM cooldowns;
    DROP TABLE cooldowns;
    ALTER TABLE cooldowns_v2 RENAME TO cooldowns;",
    // 3: which tier an attempt ran on (`local`: an agent on a model
    // endpoint, `cloud`: the others) and whether its model was loaded
    // (warm) when it started; NULL for attempts before this version.
    // And how its agent was chosen (`routed_by`: agent, prefer, route,
    // round_robin, ladder, chain, default_ladder, advisor).
    "ALTER TABLE attempts ADD COLUMN tier TEXT;
    ALTER TABLE attempts ADD COLUMN warm_start INTEGER;
    ALTER TABLE attempts ADD COLUMN routed_by TEXT;",
];

/// An error of the store, with the database's path.
#[derive(Debug, thiserror::Error)]
#[error("outcome store {path}: {source}")]
pub(crate) struct StoreError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// An open store.
pub(crate) struct Store {
    conn: Connection,
    path: PathBuf,
}

/// One attempt as stored.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Attempt {
    pub(crate) dispatch: String,
    pub(crate) n: u32,
    pub(crate) task_hash: String,
    pub(crate) labels: Vec<String>,
    pub(crate) agent: String,
    pub(crate) model: Option<String>,
    pub(crate) rung: Option<u32>,
    pub(crate) session: String,
    pub(crate) started_at: String,
    pub(crate) ended_at: Option<String>,
    pub(crate) duration_s: Option<f64>,
    pub(crate) tokens: Option<u64>,
    /// `running`, `accepted`, `failed`, `rejected`, `interrupted`, `timeout`.
    pub(crate) result: String,
    pub(crate) reason: Option<String>,
    /// `accept`, `reject`, or none when no verifier ran.
    pub(crate) verdict: Option<String>,
    pub(crate) feedback: Option<String>,
    /// The verifier's session.
    pub(crate) verifier: Option<String>,
    /// The done checks and what they found.
    pub(crate) checks: serde_json::Value,
    /// `local` (an agent on a model endpoint) or `cloud`; none in rows from
    /// before schema 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tier: Option<String>,
    /// How the agent was chosen (`agent`, `prefer`, `route`, `round_robin`,
    /// `ladder`, `chain`, `default_ladder`, `advisor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) routed_by: Option<String>,
    /// On a model endpoint: whether the model was loaded when the attempt
    /// started (asked within 200 ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warm_start: Option<bool>,
    /// The agent itself failed (did not start, crashed, reported a
    /// failure), as opposed to the task not getting done. Not stored.
    #[serde(skip)]
    pub(crate) agent_fault: bool,
}

/// What an agent did on some attempts (a dispatch advisor is shown these).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figures {
    pub(crate) agent: String,
    pub(crate) attempts: u32,
    pub(crate) success_rate: f64,
    pub(crate) median_duration_s: Option<f64>,
}

/// One probe as stored.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Probe {
    pub(crate) agent: String,
    pub(crate) model: Option<String>,
    pub(crate) session: String,
    pub(crate) started_at: String,
    pub(crate) latency_s: Option<f64>,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

/// A failure cooldown in force.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cooldown {
    pub(crate) agent: String,
    /// Seconds left.
    pub(crate) left_s: f64,
    /// When it ends (RFC 3339).
    pub(crate) until: String,
    /// The task (its hash) it is for; none: every task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) task: Option<String>,
    pub(crate) reason: String,
    pub(crate) set_at: String,
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Store {
    /// The store's file under a state root.
    pub(crate) fn path_in(root: &Path) -> PathBuf {
        root.join("reins.db")
    }

    /// Opens the store of a state root (`reins.db`), creating the root if
    /// needed, with an error that says what to do about a damaged file.
    pub(crate) fn open_in(
        state: &crate::store::paths::StateRoot,
    ) -> Result<Store, crate::error::CliError> {
        state.ensure()?;
        Store::open(&Store::path_in(state.root())).map_err(|err| {
            crate::error::CliError::failure(err.to_string())
                .hint("move the file aside if it is damaged; reins creates a new one")
        })
    }

    /// Opens (creating and migrating as needed) the store at `path`.
    pub(crate) fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError { path: path.to_path_buf(), source };
        if !path.exists() {
            // Created 0600 before SQLite opens it, so it is never readable
            // by others, not even for a moment.
            fsutil::open_append(path)
                .map_err(|e| err(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        let mut store = Store { conn, path: path.to_path_buf() };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError { path: self.path.clone(), source }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError { path: path.clone(), source };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at TEXT NOT NULL
            )",
        )
        .map_err(err)?;
        let current: u32 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
            .map_err(err)?;
        if current as usize > MIGRATIONS.len() {
            return Err(err(rusqlite::Error::InvalidParameterName(format!(
                "schema version {current} is newer than this reins knows ({}); upgrade reins",
                MIGRATIONS.len()
            ))));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql).map_err(err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![i as u32 + 1, crate::time::now_rfc3339()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The schema version in force.
    pub(crate) fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Records the start of an attempt; returns its row id.
    pub(crate) fn start_attempt(&self, a: &Attempt) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO attempts (dispatch, n, task_hash, labels, agent, model, rung, session,
                    started_at, result, checks, tier, warm_start, routed_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    a.dispatch,
                    a.n,
                    a.task_hash,
                    serde_json::to_string(&a.labels).unwrap_or_default(),
                    a.agent,
                    a.model,
                    a.rung,
                    a.session,
                    a.started_at,
                    a.result,
                    a.checks.to_string(),
                    a.tier,
                    a.warm_start,
                    a.routed_by,
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how an attempt ended.
    pub(crate) fn finish_attempt(&self, row: i64, a: &Attempt) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE attempts SET ended_at = ?2, duration_s = ?3, tokens = ?4, result = ?5,
                    reason = ?6, verdict = ?7, feedback = ?8, checks = ?9, verifier = ?10
                 WHERE id = ?1",
                params![
                    row,
                    a.ended_at,
                    a.duration_s,
                    a.tokens.map(|t| t as i64),
                    a.result,
                    a.reason,
                    a.verdict,
                    a.feedback,
                    a.checks.to_string(),
                    a.verifier,
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Attempts, newest dispatch last; only `dispatch`'s when given.
    pub(crate) fn attempts(
        &self,
        dispatch: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Attempt>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT dispatch, n, task_hash, labels, agent, model, rung, session, started_at,
                    ended_at, duration_s, tokens, result, reason, verdict, feedback, checks, verifier,
                    tier, warm_start, routed_by
                 FROM (SELECT * FROM attempts WHERE (?1 IS NULL OR dispatch = ?1)
                       ORDER BY id DESC LIMIT ?2)
                 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![dispatch, limit], |r| {
                let labels: String = r.get(3)?;
                let checks: String = r.get(16)?;
                Ok(Attempt {
                    dispatch: r.get(0)?,
                    n: r.get(1)?,
                    task_hash: r.get(2)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    agent: r.get(4)?,
                    model: r.get(5)?,
                    rung: r.get(6)?,
                    session: r.get(7)?,
                    started_at: r.get(8)?,
                    ended_at: r.get(9)?,
                    duration_s: r.get(10)?,
                    tokens: r.get::<_, Option<i64>>(11)?.map(|t| t as u64),
                    result: r.get(12)?,
                    reason: r.get(13)?,
                    verdict: r.get(14)?,
                    feedback: r.get(15)?,
                    checks: serde_json::from_str(&checks).unwrap_or_default(),
                    verifier: r.get(17)?,
                    tier: r.get(18)?,
                    warm_start: r.get(19)?,
                    routed_by: r.get(20)?,
                    agent_fault: false,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Closes the attempts of `dispatch` still marked running (their
    /// dispatcher died): result `interrupted` with `reason`. Returns how
    /// many it closed.
    pub(crate) fn close_running(&self, dispatch: &str, reason: &str) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE attempts SET result = 'interrupted', reason = ?2, ended_at = ?3
                 WHERE dispatch = ?1 AND result = 'running'",
                params![dispatch, reason, crate::time::now_rfc3339()],
            )
            .map_err(|e| self.err(e))
    }

    /// The highest attempt number of `dispatch` so far (0: none).
    pub(crate) fn last_attempt_n(&self, dispatch: &str) -> Result<u32, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(n), 0) FROM attempts WHERE dispatch = ?1",
                params![dispatch],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The agent of the most recent first attempt of any dispatch (where
    /// round robin goes on from).
    pub(crate) fn last_first_choice(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT agent FROM attempts WHERE n = 1 ORDER BY id DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Puts `agent` in a cooldown of `for_` from now: for every task, or
    /// (`task`: its hash) for that task only.
    pub(crate) fn set_cooldown(
        &self,
        agent: &str,
        task: Option<&str>,
        for_: Duration,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO cooldowns (agent, task, until_unix, reason, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (agent, task) DO UPDATE SET until_unix = ?3, reason = ?4, set_at = ?5",
                params![
                    agent,
                    task.unwrap_or(""),
                    now_unix() + for_.as_secs_f64(),
                    reason,
                    crate::time::now_rfc3339()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The cooldown of `agent` in force for `task` (its hash; none: any
    /// task), if one is: the agent's own, or the task's, whichever lasts
    /// longer.
    pub(crate) fn cooldown(
        &self,
        agent: &str,
        task: Option<&str>,
    ) -> Result<Option<Cooldown>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT until_unix, reason, set_at, task FROM cooldowns
                 WHERE agent = ?1 AND (task = '' OR task = ?2)
                 ORDER BY until_unix DESC LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        let row: Option<(f64, String, String, String)> = stmt
            .query_row(params![agent, task.unwrap_or("")], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let now = now_unix();
        Ok(row.filter(|(until, ..)| *until > now).map(|(until, reason, set_at, task)| Cooldown {
            agent: agent.to_string(),
            left_s: ((until - now) * 10.0).round() / 10.0,
            until: jiff::Timestamp::from_millisecond((until * 1000.0) as i64)
                .map(crate::time::format_rfc3339)
                .unwrap_or_default(),
            task: Some(task).filter(|t| !t.is_empty()),
            reason,
            set_at,
        }))
    }

    /// What each agent did on finished attempts with any of `labels` (all
    /// attempts when there are none): attempts, accepted, median duration.
    pub(crate) fn figures(&self, labels: &[String]) -> Result<Vec<Figures>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT agent, labels, result, duration_s FROM attempts
                 WHERE ended_at IS NOT NULL ORDER BY id DESC LIMIT 5000",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut by_agent: Vec<(String, u32, u32, Vec<f64>)> = Vec::new();
        for row in rows {
            let (agent, row_labels, result, duration) = row.map_err(|e| self.err(e))?;
            let row_labels: Vec<String> = serde_json::from_str(&row_labels).unwrap_or_default();
            if !labels.is_empty() && !row_labels.iter().any(|l| labels.contains(l)) {
                continue;
            }
            let i = match by_agent.iter().position(|(a, ..)| *a == agent) {
                Some(i) => i,
                None => {
                    by_agent.push((agent, 0, 0, Vec::new()));
                    by_agent.len() - 1
                }
            };
            let entry = &mut by_agent[i];
            entry.1 += 1;
            entry.2 += u32::from(result == "accepted");
            entry.3.extend(duration);
        }
        Ok(by_agent
            .into_iter()
            .map(|(agent, attempts, accepted, mut durations)| {
                durations.sort_by(f64::total_cmp);
                Figures {
                    agent,
                    attempts,
                    success_rate: f64::from(accepted) / f64::from(attempts.max(1)),
                    median_duration_s: durations.get(durations.len() / 2).copied(),
                }
            })
            .collect())
    }

    /// Records a probe.
    pub(crate) fn add_probe(&self, p: &Probe) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO probes (agent, model, session, started_at, latency_s, ok, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![p.agent, p.model, p.session, p.started_at, p.latency_s, p.ok, p.detail],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The latest probe of `agent`.
    pub(crate) fn last_probe(&self, agent: &str) -> Result<Option<Probe>, StoreError> {
        self.conn
            .query_row(
                "SELECT agent, model, session, started_at, latency_s, ok, detail FROM probes
                 WHERE agent = ?1 ORDER BY id DESC LIMIT 1",
                params![agent],
                |r| {
                    Ok(Probe {
                        agent: r.get(0)?,
                        model: r.get(1)?,
                        session: r.get(2)?,
                        started_at: r.get(3)?,
                        latency_s: r.get(4)?,
                        ok: r.get(5)?,
                        detail: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

/// A stable short hash of a task's text (FNV-1a, 64 bits, hex), so the
/// same task is recognised across dispatches without storing its text.
pub(crate) fn task_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.trim().as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reins.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3, "reopening does not migrate again");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let mut a = Attempt {
            dispatch: "d".into(),
            n: 1,
            task_hash: task_hash("x"),
            labels: vec!["l".into()],
            agent: "cheap".into(),
            session: "d".into(),
            started_at: "t".into(),
            result: "running".into(),
            checks: serde_json::json!([]),
            tier: Some("local".into()),
            warm_start: Some(false),
            ..Attempt::default()
        };
        let row = store.start_attempt(&a).unwrap();
        a.result = "failed".into();
        a.tokens = Some(12);
        store.finish_attempt(row, &a).unwrap();
        let got = store.attempts(Some("d"), 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].tier.as_deref(), got[0].warm_start), (Some("local"), Some(false)));
        assert_eq!((got[0].result.as_str(), got[0].tokens), ("failed", Some(12)));
        assert_eq!(got[0].labels, ["l"]);
        assert_eq!(store.last_first_choice().unwrap().as_deref(), Some("cheap"));

        store.set_cooldown("cheap", None, Duration::from_secs(60), "failed twice").unwrap();
        assert!(store.cooldown("cheap", None).unwrap().is_some());
        store.set_cooldown("cheap", None, Duration::ZERO, "over").unwrap();
        assert!(store.cooldown("cheap", None).unwrap().is_none());
        // A task's cooldown holds for that task only.
        store.set_cooldown("cheap", Some("t1"), Duration::from_secs(60), "not done").unwrap();
        let c = store.cooldown("cheap", Some("t1")).unwrap().expect("for t1");
        assert_eq!(c.task.as_deref(), Some("t1"));
        assert!(store.cooldown("cheap", Some("t2")).unwrap().is_none());
        assert!(store.cooldown("cheap", None).unwrap().is_none());
    }

    #[test]
    fn a_version_1_store_keeps_its_cooldowns_as_the_agents_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reins.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'then');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO cooldowns (agent, until_unix, reason, set_at) VALUES ('cheap', ?1, 'r', 's')",
            params![now_unix() + 600.0],
        )
        .unwrap();
        drop(conn);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
        let c = store.cooldown("cheap", Some("any task")).unwrap().expect("kept");
        assert_eq!((c.task, c.reason.as_str()), (None, "r"));
    }

    #[test]
    fn a_version_2_store_gains_tier_and_warm_start_and_keeps_its_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reins.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'then'), (2, 'then');
             INSERT INTO attempts (dispatch, n, task_hash, agent, session, started_at)
                 VALUES ('old', 1, 'h', 'cheap', 'old', 't');",
        )
        .unwrap();
        drop(conn);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
        let got = store.attempts(Some("old"), 10).unwrap();
        assert_eq!(
            (got[0].agent.as_str(), got[0].tier.as_deref(), got[0].warm_start),
            ("cheap", None, None)
        );
    }

    #[test]
    fn task_hash_ignores_surrounding_whitespace() {
        assert_eq!(task_hash("fix it\n"), task_hash("fix it"));
        assert_ne!(task_hash("fix it"), task_hash("fix that"));
    }
}
