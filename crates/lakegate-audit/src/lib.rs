//! Lakegate's audit log: one JSON line per call that reads data or is
//! denied, appended to `<dir>/audit.jsonl` and rotated by size.
//!
//! ```text
//! Flight call ─▶ AuditEvent ─▶ AuditLog::record ─▶ audit.jsonl   (one line, written at once)
//!                                                   audit.jsonl.1 (older, after rotation)
//!                                                   ...
//! system.audit (admins) ◀─ read_events ◀───────────┘
//! ```
//!
//! Every line is written with one `write` call on a file opened for
//! appending, so nothing waits in a buffer: a clean shutdown loses nothing
//! and a crash loses at most the line being written. The fields are those of
//! [`AuditEvent`]; [`audit_schema`] is their Arrow form.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// The name of the current log file in the audit directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// What a call read of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRead {
    /// `database.table`.
    pub table: String,
    /// The columns the query read, as the role sees them.
    pub columns: Vec<String>,
    /// The grants whose policy applied, by name.
    pub policies: Vec<String>,
}

/// What a call wrote to one table (an `INSERT`, a bulk ingestion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableWrite {
    /// `database.table`.
    pub table: String,
    /// Rows committed (0 when the write was refused or failed).
    pub rows: u64,
    /// Bytes of Parquet committed.
    pub bytes: u64,
    /// The insert grants that accepted the rows, by name.
    pub grants: Vec<String>,
    /// The object committed, when rows were (a Delta table's first new
    /// data file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The Delta table version the write committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// Authentication failed or the role may not do it.
    Denied,
    /// It failed for another reason (bad SQL, an execution error, a limit).
    Error,
    /// The client went away or cancelled before the end.
    Cancelled,
}

/// One audited call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When the call started, RFC 3339 in UTC with microseconds.
    pub time: String,
    /// The authenticated (or, when authentication failed, the claimed) user.
    pub user: Option<String>,
    /// The runtime role the call ran under (or asked for).
    pub role: Option<String>,
    /// The caller's source identity (`x-lakegate-source-identity`): the
    /// one bound into its token at sign-in, or the one its call sent.
    pub source_identity: Option<String>,
    /// The peer's address.
    pub peer: Option<String>,
    /// The RPC and command, such as `DoGet/statement` or `GetFlightInfo/tables`.
    pub action: String,
    /// The SQL text, for statements.
    pub statement: Option<String>,
    /// What the call read.
    pub tables: Vec<TableRead>,
    /// How it ended.
    pub outcome: Outcome,
    /// The gRPC status code name when it did not succeed, such as `PERMISSION_DENIED`.
    pub error_code: Option<String>,
    /// The error message returned to the client.
    pub error: Option<String>,
    /// Rows returned.
    pub rows: u64,
    /// Bytes of Arrow data returned.
    pub bytes: u64,
    /// Wall time from the start of the call to its end, in milliseconds.
    pub duration_ms: f64,
    /// The policy version the call was served under (0: a declarative
    /// catalog; absent when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i64>,
    /// For an administration statement that changed the policy: the
    /// version it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version_after: Option<i64>,
    /// How the caller signed in: `password`, `oidc`, `certificate` or
    /// `kerberos` (absent when it did not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<String>,
    /// For a write: the table and what was committed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<TableWrite>,
}

impl AuditEvent {
    /// The event of a call of `action` starting now, about nobody yet: the
    /// caller fills in what it knows, and the outcome is `ok` until
    /// [`AuditEvent::fail`] says otherwise.
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            time: now_rfc3339(),
            user: None,
            role: None,
            source_identity: None,
            peer: None,
            action: action.into(),
            statement: None,
            tables: Vec::new(),
            outcome: Outcome::Ok,
            error_code: None,
            error: None,
            rows: 0,
            bytes: 0,
            duration_ms: 0.0,
            policy_version: None,
            policy_version_after: None,
            written: None,
            sign_in: None,
        }
    }

    /// Records the call as failed with the gRPC code named `code` (such as
    /// `PERMISSION_DENIED`) and the message the caller got: refusals of
    /// who the caller is or what it may do are `denied`, a cancellation
    /// `cancelled`, anything else `error`.
    pub fn fail(&mut self, code: &str, message: impl Into<String>) {
        self.outcome = match code {
            "UNAUTHENTICATED" | "PERMISSION_DENIED" => Outcome::Denied,
            "CANCELLED" => Outcome::Cancelled,
            _ => Outcome::Error,
        };
        self.error_code = Some(code.to_string());
        self.error = Some(message.into());
    }
}

/// The current time as [`AuditEvent::time`] writes it.
pub fn now_rfc3339() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    let stamp = TimestampMicrosecondArray::from(vec![micros]).with_timezone("+00:00");
    arrow::util::display::ArrayFormatter::try_new(&stamp, &Default::default())
        .map(|f| f.value(0).to_string())
        .unwrap_or_default()
}

/// Where the log lives and when it rotates.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The directory holding `audit.jsonl` and its rotated predecessors.
    pub dir: PathBuf,
    /// Rotate once the current file reaches this size.
    pub max_file_bytes: u64,
    /// Rotated files kept (`audit.jsonl.1` is the newest); older ones are deleted.
    pub keep_files: usize,
}

impl AuditOptions {
    /// Defaults for `dir`: rotate at 64 MiB, keep 10 rotated files.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_file_bytes: 64 * 1024 * 1024,
            keep_files: 10,
        }
    }
}

struct Current {
    file: File,
    size: u64,
}

/// The audit log. Cheap to clone; all clones append to the same file.
#[derive(Clone)]
pub struct AuditLog {
    options: Arc<AuditOptions>,
    current: Arc<Mutex<Current>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.options.dir)
            .finish_non_exhaustive()
    }
}

fn open_current(dir: &Path) -> io::Result<Current> {
    let path = dir.join(AUDIT_FILE);
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut size = file.metadata()?.len();
    // A line torn by a crash must not swallow the next event.
    if size > 0 && !ends_with_newline(&path)? {
        file.write_all(b"\n")?;
        size += 1;
    }
    Ok(Current { file, size })
}

fn ends_with_newline(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl AuditLog {
    /// Opens (creating it if needed) the log in `options.dir`.
    pub fn open(options: AuditOptions) -> io::Result<Self> {
        std::fs::create_dir_all(&options.dir)?;
        let current = open_current(&options.dir)?;
        Ok(Self {
            options: Arc::new(options),
            current: Arc::new(Mutex::new(current)),
        })
    }

    /// The directory the log is in.
    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// Appends one event. A failure to write is logged, never returned: the
    /// call being audited has already happened.
    pub fn record(&self, event: &AuditEvent) {
        if let Err(e) = self.try_record(event) {
            log::error!(
                "cannot write the audit log in {}: {e}",
                self.options.dir.display()
            );
        }
    }

    fn try_record(&self, event: &AuditEvent) -> io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.size > 0 && current.size + line.len() as u64 > self.options.max_file_bytes {
            self.rotate(&mut current)?;
        }
        current.file.write_all(&line)?;
        current.size += line.len() as u64;
        Ok(())
    }

    /// `audit.jsonl` becomes `audit.jsonl.1`, `.1` becomes `.2`, and so on;
    /// the oldest beyond `keep_files` is deleted.
    fn rotate(&self, current: &mut Current) -> io::Result<()> {
        let dir = &self.options.dir;
        let numbered = |n: usize| dir.join(format!("{AUDIT_FILE}.{n}"));
        let _ = std::fs::remove_file(numbered(self.options.keep_files));
        for n in (1..self.options.keep_files).rev() {
            if numbered(n).exists() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
        }
        if self.options.keep_files > 0 {
            std::fs::rename(dir.join(AUDIT_FILE), numbered(1))?;
        } else {
            std::fs::remove_file(dir.join(AUDIT_FILE))?;
        }
        *current = open_current(dir)?;
        Ok(())
    }

    /// Forces written events to stable storage (at shutdown).
    pub fn sync(&self) -> io::Result<()> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.file.sync_all()
    }
}

/// The Arrow schema of the audit log as a table (`system.audit`): the event
/// fields, with `time` as a UTC timestamp and `tables` as a list of structs.
pub fn audit_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let strings = |name: &str| {
            Field::new(
                name,
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            )
        };
        let table_read =
            DataType::Struct(vec![text("table"), strings("columns"), strings("policies")].into());
        Arc::new(Schema::new(vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                false,
            ),
            text("user"),
            text("role"),
            text("source_identity"),
            text("peer"),
            Field::new("action", DataType::Utf8, false),
            text("statement"),
            Field::new(
                "tables",
                DataType::List(Arc::new(Field::new("item", table_read, true))),
                true,
            ),
            Field::new("outcome", DataType::Utf8, false),
            text("error_code"),
            text("error"),
            Field::new("rows", DataType::UInt64, false),
            Field::new("bytes", DataType::UInt64, false),
            Field::new("duration_ms", DataType::Float64, false),
            Field::new("policy_version", DataType::Int64, true),
            Field::new("policy_version_after", DataType::Int64, true),
            text("sign_in"),
            Field::new(
                "written",
                DataType::Struct(
                    vec![
                        text("table"),
                        Field::new("rows", DataType::UInt64, true),
                        Field::new("bytes", DataType::UInt64, true),
                        strings("grants"),
                        text("object"),
                        Field::new("version", DataType::UInt64, true),
                    ]
                    .into(),
                ),
                true,
            ),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// Every event in the audit directory, oldest first, as record batches of
/// [`audit_schema`]. A line that does not parse (a crash mid-write) is
/// skipped with a warning rather than hiding the rest of the log.
pub fn read_events(dir: &Path) -> io::Result<Vec<RecordBatch>> {
    if !dir.exists() {
        return Ok(Vec::new()); // nothing audited yet
    }
    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name == AUDIT_FILE {
            files.push((0, path));
        } else if let Some(n) = name
            .strip_prefix(AUDIT_FILE)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse().ok())
        {
            files.push((n, path));
        }
    }
    // Highest number = oldest.
    files.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut batches = Vec::new();
    for (_, path) in files {
        let text = std::fs::read_to_string(&path)?;
        let valid: String = text
            .lines()
            .filter(|line| {
                let ok = serde_json::from_str::<AuditEvent>(line).is_ok();
                if !ok && !line.trim().is_empty() {
                    log::warn!("skipping an unreadable line in {}", path.display());
                }
                ok
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        let reader = arrow::json::ReaderBuilder::new(audit_schema())
            .build(BufReader::new(valid.as_bytes()))
            .map_err(io::Error::other)?;
        for batch in reader {
            batches.push(batch.map_err(io::Error::other)?);
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str) -> AuditEvent {
        AuditEvent {
            time: now_rfc3339(),
            user: Some(user.into()),
            role: Some("analyst".into()),
            source_identity: None,
            peer: Some("127.0.0.1:5000".into()),
            action: "DoGet/statement".into(),
            statement: Some("SELECT 1".into()),
            tables: vec![TableRead {
                table: "shop.orders".into(),
                columns: vec!["a".into()],
                policies: vec!["analyst_orders".into()],
            }],
            outcome: Outcome::Ok,
            error_code: None,
            error: None,
            rows: 3,
            bytes: 120,
            duration_ms: 1.5,
            policy_version: Some(3),
            policy_version_after: None,
            sign_in: Some("password".into()),
            written: Some(TableWrite {
                table: "sales.orders".into(),
                rows: 2,
                bytes: 900,
                grants: vec!["clerk_inserts".into()],
                object: Some("lake/orders/part-1.parquet".into()),
                version: None,
            }),
        }
    }

    #[test]
    fn time_is_rfc3339_utc() {
        let time = now_rfc3339();
        assert!(time.ends_with("+00:00") || time.ends_with('Z'), "{time}");
        assert_eq!(&time[4..5], "-");
        assert_eq!(&time[10..11], "T");
    }

    #[test]
    fn events_round_trip_through_the_table_form() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(AuditOptions::in_dir(dir.path())).unwrap();
        log.record(&event("ann"));
        log.record(&event("bob"));
        let batches = read_events(dir.path()).unwrap();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 2);
        assert_eq!(batches[0].schema(), audit_schema());
    }

    #[test]
    fn rotates_by_size_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let options = AuditOptions {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 1,
            keep_files: 2,
        };
        let log = AuditLog::open(options).unwrap();
        for user in ["a", "b", "c", "d"] {
            log.record(&event(user));
        }
        // One event per file: d in the current file, c in .1, b in .2; a is gone.
        assert!(dir.path().join("audit.jsonl.2").exists());
        assert!(!dir.path().join("audit.jsonl.3").exists());
        let batches = read_events(dir.path()).unwrap();
        let users: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let users = b.column_by_name("user").unwrap();
                let users = users
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                users
                    .iter()
                    .flatten()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(users, ["b", "c", "d"]);
    }

    #[test]
    fn a_torn_line_does_not_hide_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(AuditOptions::in_dir(dir.path())).unwrap();
        log.record(&event("ann"));
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(AUDIT_FILE))
            .unwrap()
            .write_all(b"{\"time\": \"20")
            .unwrap();
        let rows: usize = read_events(dir.path())
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 1);
        // Reopening (a restart) ends the torn line, so later events survive.
        let log = AuditLog::open(AuditOptions::in_dir(dir.path())).unwrap();
        log.record(&event("bob"));
        let rows: usize = read_events(dir.path())
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 2);
    }
}
