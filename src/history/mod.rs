//! The run history: every finished run's identity and headline metrics in
//! an embedded SQLite database (`results/history.sqlite` by default), so
//! that a run can be judged against its plan's last (passing) run
//! (`--baseline latest`), a report can show how the plan's headline
//! figures moved over its last runs, and `infercheck history` can list
//! them.
//!
//! One row per run: the identity (run id, plan name, plan hash, target,
//! models, engine, stack version, start and end, verdict, exit code, where
//! its report.json is) and its [`Headline`] figures. A run id recorded
//! again **replaces** its row (an upsert: recording is idempotent, the
//! last record wins and keeps the run's place in insertion order).
//!
//! "Newest" means the latest start (`started_at`, RFC 3339, compared as an
//! instant), then the latest recorded; a start that does not parse counts
//! as older than every one that does.
//!
//! Several processes may record into one file at once: the database is in
//! WAL mode, every connection waits up to [`BUSY_TIMEOUT`] for a lock, and
//! every write is one `BEGIN IMMEDIATE` transaction. The schema's version
//! is `PRAGMA user_version` (see `schema`); a file of a newer schema, a
//! file that is not SQLite and another program's database are refused
//! with an error naming the file — never reset, never a panic.

mod entry;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use crate::report::Headline;
pub use entry::{EMBEDDED_SIMULATOR, RunEntry, plan_hash};

/// How long a connection waits for another's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open run history.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

/// Why the history could not be opened, read or written; every message
/// names the file.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no run history at {}", .path.display())]
    Missing { path: PathBuf },
    #[error("cannot create the folder of the run history {}: {error}", .path.display())]
    Folder {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not an infercheck history: {reason}", .path.display())]
    NotAHistory { path: PathBuf, reason: String },
    #[error(
        "{} was written by a newer infercheck: schema {found}, this build reads up to {supported}",
        .path.display()
    )]
    Newer {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("run history {} is corrupt: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("run history {}: {error}", .path.display())]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
}

impl HistoryError {
    /// Whether SQLite gave up waiting for another connection's lock.
    fn is_busy(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        matches!(
            self,
            HistoryError::Sqlite {
                error: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if matches!(e.code, DatabaseBusy | DatabaseLocked)
        )
    }

    /// The error `error` of SQLite on `path`, told apart: not a database,
    /// a damaged file or row, anything else.
    fn sqlite(path: &Path, error: rusqlite::Error) -> HistoryError {
        use rusqlite::{Error, ErrorCode};
        let path = path.to_owned();
        match &error {
            Error::SqliteFailure(e, _) if e.code == ErrorCode::NotADatabase => {
                HistoryError::NotAHistory {
                    path,
                    reason: "file is not a database".to_owned(),
                }
            }
            Error::SqliteFailure(e, _) if e.code == ErrorCode::DatabaseCorrupt => {
                HistoryError::Corrupt {
                    path,
                    reason: error.to_string(),
                }
            }
            Error::InvalidColumnType(..)
            | Error::FromSqlConversionFailure(..)
            | Error::IntegralValueOutOfRange(..) => HistoryError::Corrupt {
                path,
                reason: format!("a row does not read: {error}"),
            },
            _ => HistoryError::Sqlite { path, error },
        }
    }
}

/// Which run of a plan [`History::find`] picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// The plan's newest run, whatever its verdict.
    Latest,
    /// The plan's newest run whose verdict was "pass".
    LatestPass,
}

impl History {
    /// Opens the history at `path`, creating the file and its folder if
    /// missing and bringing an older schema up to date.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|error| HistoryError::Folder {
                path: path.to_owned(),
                error,
            })?;
        }
        Self::connect(path)
    }

    /// Opens the history at `path` only if the file exists (for commands
    /// that read one: a missing file is [`HistoryError::Missing`]).
    pub fn open_existing(path: &Path) -> Result<History, HistoryError> {
        if !path.is_file() {
            return Err(HistoryError::Missing {
                path: path.to_owned(),
            });
        }
        Self::connect(path)
    }

    fn connect(path: &Path) -> Result<History, HistoryError> {
        let fail = |e| HistoryError::sqlite(path, e);
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        retry_while_busy(|| {
            use_wal(&conn, path)?;
            schema::migrate(&conn, path)
        })?;
        Ok(History {
            conn,
            path: path.to_owned(),
        })
    }

    /// The file this history is kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records the finished run `report`, whose report.json is at
    /// `report_path`, and returns its entry. A run id already recorded is
    /// replaced.
    pub fn record(
        &self,
        report: &crate::report::Report,
        report_path: &Path,
        stack_version: Option<&str>,
    ) -> Result<RunEntry, HistoryError> {
        let entry = RunEntry::of(report, report_path, stack_version);
        self.write(|tx| entry::upsert(tx, &entry, &report.ended_at))?;
        Ok(entry)
    }

    /// The newest run of `plan` that `which` selects, leaving out
    /// `excluding_run_id` (the run being judged); `None` when there is
    /// none.
    pub fn find(
        &self,
        plan: &str,
        which: Select,
        excluding_run_id: Option<&str>,
    ) -> Result<Option<RunEntry>, HistoryError> {
        let outcome = match which {
            Select::Latest => None,
            Select::LatestPass => Some("pass"),
        };
        let filter = entry::Filter {
            plan: Some(plan),
            outcome,
            excluding_run_id,
        };
        let mut found = self.read(|conn| entry::newest(conn, &filter, 1))?;
        Ok(found.pop())
    }

    /// The newest `limit` runs, of `plan` only when given, newest first.
    pub fn runs(&self, plan: Option<&str>, limit: usize) -> Result<Vec<RunEntry>, HistoryError> {
        let filter = entry::Filter {
            plan,
            ..entry::Filter::default()
        };
        self.read(|conn| entry::newest(conn, &filter, limit))
    }

    /// The last `last` runs of `plan`, oldest first, for the report.
    pub fn trend(
        &self,
        plan: &str,
        last: usize,
    ) -> Result<crate::report::HistoryTrend, HistoryError> {
        let mut runs = self.runs(Some(plan), last)?;
        runs.reverse();
        Ok(crate::report::HistoryTrend {
            plan_name: plan.to_owned(),
            points: runs.into_iter().map(RunEntry::into_point).collect(),
        })
    }

    fn read<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        query(&self.conn).map_err(|e| HistoryError::sqlite(&self.path, e))
    }

    /// Runs `change` in one `BEGIN IMMEDIATE` transaction: the write lock
    /// is taken up front (waiting up to [`BUSY_TIMEOUT`]), so two writers
    /// never deadlock upgrading a read.
    fn write(
        &self,
        change: impl FnOnce(&Transaction) -> rusqlite::Result<()>,
    ) -> Result<(), HistoryError> {
        let fail = |e| HistoryError::sqlite(&self.path, e);
        let tx =
            Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(fail)?;
        change(&tx).map_err(fail)?;
        tx.commit().map_err(fail)
    }
}

/// Puts the file in WAL mode (kept in the file: a no-op after its first
/// open). The first read of the file: one that is not SQLite fails here.
fn use_wal(conn: &Connection, path: &Path) -> Result<(), HistoryError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| HistoryError::sqlite(path, e))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(HistoryError::NotAHistory {
            path: path.to_owned(),
            reason: format!("it cannot use a write-ahead log (journal mode {mode})"),
        })
    }
}

/// Runs `attempt` again while SQLite answers "busy", until
/// [`BUSY_TIMEOUT`] has passed. SQLite returns SQLITE_BUSY at once, without
/// waiting in its busy handler, where waiting could deadlock — switching a
/// new file to WAL while another connection opens it is one such case —
/// so the first steps of opening a shared file wait here instead.
fn retry_while_busy(
    mut attempt: impl FnMut() -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    const PAUSE: Duration = Duration::from_millis(5);
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match attempt() {
            Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
                std::thread::sleep(PAUSE);
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests;
