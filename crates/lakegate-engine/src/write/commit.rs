//! Committing a write: to a Parquet table, every row of one statement goes
//! into one new Parquet object under the table's prefix, made visible in one
//! step or not at all; a Delta table's write is one commit to its log
//! (`delta_append.rs`).
//!
//! ```text
//! checked batches ─▶ ParquetEncoder ─▶ ObjectSink (one PUT, or a multipart upload)
//!                        │ a check fails, a limit is hit, an error:  abort ─▶ nothing visible
//!                        └ all rows written: complete ─▶ part-<time>-<uuid>.parquet visible
//! ```
//!
//! Object stores make an object visible only when its upload completes: S3
//! (and its compatible servers) and Azure on the final request of a PUT or
//! multipart upload; the local file system writes to a staging file
//! (`name#n`, which listing skips) and renames it. A reader therefore sees
//! a statement's rows all at once or not at all, and a crashed writer leaves
//! nothing a reader lists. The object is written through the table's
//! location, so its credentials and encryption settings (SSE-KMS) apply.
//!
//! On the local file system a crashed writer leaves its staging file; a
//! commit to a table removes the table's staging files older than
//! [`STAGING_FILES_KEPT_FOR`] (an upload that old is not running any more).
//! On S3 an abandoned multipart upload is the bucket's lifecycle rule's to
//! remove: object_store cannot list them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::cache::cache_manager::TableScopedPath;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use lakegate_policy::TableName;
use object_store::path::Path;

use lakegate_catalog::{StorageLocation, TableFormat};

use super::WriteTarget;
use super::delta_append::PendingAppend;
use super::encoder::ParquetEncoder;
use super::object_sink::ObjectSink;
use crate::error::{EngineError, Result};
use crate::lake::Lake;

/// How long a local staging file may stay before a commit to its table
/// removes it.
pub(crate) const STAGING_FILES_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// How many times each table has been written by this engine: a secured
/// table's kept scan plan (which holds a file list) is reused only while the
/// count it was planned at stands, so a writer reads its own rows at once.
#[derive(Debug, Default)]
pub(crate) struct TableWrites {
    counts: Mutex<HashMap<TableName, u64>>,
}

impl TableWrites {
    /// The writes committed to `table` so far.
    pub(crate) fn count(&self, table: &TableName) -> u64 {
        let counts = self.counts.lock().expect("write counts are never poisoned");
        counts.get(table).copied().unwrap_or(0)
    }

    pub(crate) fn committed(&self, table: &TableName) {
        let mut counts = self.counts.lock().expect("write counts are never poisoned");
        *counts.entry(table.clone()).or_default() += 1;
    }
}

/// One statement's rows on their way into a new object of `table`.
pub(crate) struct PendingObject {
    table: TableName,
    url: ListingTableUrl,
    path: Path,
    schema: SchemaRef,
    encoder: ParquetEncoder,
    rows: u64,
    max_bytes: usize,
    /// The table's directory, when it is on the local file system.
    local_dir: Option<std::path::PathBuf>,
    /// Whether a write of no row still makes its object (a new table's
    /// first object holds its schema).
    keep_when_empty: bool,
}

/// A committed object: where, how many rows, how many bytes (and, for a
/// Delta table, the version committed).
#[derive(Debug, Clone)]
pub(crate) struct CommittedObject {
    pub(crate) path: String,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) version: Option<u64>,
    /// Every object the write made, by object path (a Delta commit's data
    /// files and its log entry).
    pub(crate) files: Vec<String>,
}

/// A statement's write on its way into its table, by the table's format.
pub(crate) enum PendingWrite {
    /// One new Parquet object under a Parquet table's prefix (boxed, like
    /// the append: both are large).
    Object(Box<PendingObject>),
    /// One commit to a Delta table's log.
    Delta(Box<PendingAppend>),
}

impl PendingWrite {
    /// Starts the write of `target`'s rows (of `schema`) in `lake`.
    pub(crate) fn start(lake: &Lake, target: &WriteTarget, schema: SchemaRef) -> Result<Self> {
        let table = &target.table;
        let location = lake.catalog().storage.get(&table.storage).ok_or_else(|| {
            EngineError::Internal(format!("table '{}' has no storage location", table.name))
        })?;
        if table.format == TableFormat::Delta {
            let delta = location
                .delta_table(&table.url)
                .map_err(EngineError::Internal)?;
            return Ok(Self::Delta(Box::new(PendingAppend::start(
                &table.name,
                delta,
                schema,
                lake.max_write_bytes(),
            ))));
        }
        PendingObject::start(
            lake.user_template().runtime_env(),
            &table.name,
            table.url.as_str(),
            schema,
            lake.max_write_bytes(),
            location.url.scheme() == "file",
        )
        .map(|object| Self::Object(Box::new(object)))
    }

    /// Starts the write of a new `table` of `format`, read at `url` (its
    /// listing URL under `location`), holding rows of `schema`: written
    /// even when there is no row, and a Delta table's version 0.
    pub(crate) fn start_new(
        lake: &Lake,
        location: &StorageLocation,
        table: &TableName,
        format: TableFormat,
        url: &str,
        schema: &SchemaRef,
    ) -> Result<Self> {
        if format == TableFormat::Delta {
            let url = url::Url::parse(url).map_err(|e| EngineError::Internal(e.to_string()))?;
            let delta = location.delta_table(&url).map_err(EngineError::Internal)?;
            return Ok(Self::Delta(Box::new(PendingAppend::start_creating(
                table,
                delta,
                Arc::clone(schema),
                lake.max_write_bytes(),
            ))));
        }
        let mut object = PendingObject::start(
            lake.user_template().runtime_env(),
            table,
            url,
            Arc::clone(schema),
            lake.max_write_bytes(),
            location.url.scheme() == "file",
        )?;
        object.keep_when_empty = true;
        Ok(Self::Object(Box::new(object)))
    }

    /// The schema the written batches must have.
    pub(crate) fn schema(&self) -> &SchemaRef {
        match self {
            Self::Object(object) => object.schema(),
            Self::Delta(append) => append.schema(),
        }
    }

    /// Adds `batch`; past the byte limit the write fails (and the caller
    /// aborts it).
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Object(object) => object.write(batch).await,
            Self::Delta(append) => append.write(batch),
        }
    }

    /// Makes the rows visible in one step (nothing, when there is no row).
    pub(crate) async fn commit(
        self,
        runtime: &RuntimeEnv,
        writes: &TableWrites,
    ) -> Result<Option<CommittedObject>> {
        match self {
            Self::Object(object) => (*object).commit(runtime, writes).await,
            Self::Delta(append) => (*append).commit(writes).await,
        }
    }

    /// Abandons the write: nothing of it becomes visible.
    pub(crate) async fn abort(self) {
        match self {
            Self::Object(object) => (*object).abort().await,
            // Nothing was written yet: the rows are only in memory.
            Self::Delta(_) => {}
        }
    }
}

impl PendingObject {
    /// Starts an object under the prefix of `table` (read at `url`), whose
    /// files hold `schema`; at most `max_bytes` of Parquet may be written.
    pub(crate) fn start(
        runtime: &RuntimeEnv,
        table: &TableName,
        url: &str,
        schema: SchemaRef,
        max_bytes: usize,
        local: bool,
    ) -> Result<Self> {
        let url = ListingTableUrl::parse(url).map_err(EngineError::from_planning)?;
        let store = runtime
            .object_store(&url)
            .map_err(|e| EngineError::Storage(format!("table '{table}': {e}")))?;
        let path = url.prefix().clone().join(object_name());
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let encoder = ParquetEncoder::try_new(
            ObjectSink::new(store, path.clone()),
            Arc::clone(&schema),
            properties,
        )
        .map_err(|e| EngineError::Internal(format!("cannot start a Parquet writer: {e}")))?;
        let local_dir = local.then(|| std::path::PathBuf::from(format!("/{}", url.prefix())));
        Ok(Self {
            local_dir,
            keep_when_empty: false,
            table: table.clone(),
            url,
            path,
            schema,
            encoder,
            rows: 0,
            max_bytes,
        })
    }

    /// The schema the object's batches must have.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Adds `batch` (of [`PendingObject::schema`]); past the byte limit the
    /// write fails (and the caller aborts it).
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.encoder
            .write(batch)
            .await
            .map_err(|e| self.storage_error(&e))?;
        self.rows += batch.num_rows() as u64;
        let size = self.encoder.size_so_far();
        if size > self.max_bytes {
            return Err(EngineError::ResourceExhausted(format!(
                "the write to table '{}' is larger than the {} bytes one statement may write \
                 (--max-write-bytes); nothing was written",
                self.table, self.max_bytes
            )));
        }
        Ok(())
    }

    /// Makes the object visible (nothing, when no row was written), and
    /// tells readers of this engine to list the table again.
    pub(crate) async fn commit(
        mut self,
        runtime: &RuntimeEnv,
        writes: &TableWrites,
    ) -> Result<Option<CommittedObject>> {
        if self.rows == 0 && !self.keep_when_empty {
            self.abort().await;
            return Ok(None);
        }
        if let Err(e) = self.encoder.finish().await {
            let error = self.storage_error(&e);
            self.abort().await;
            return Err(error);
        }
        let committed = CommittedObject {
            path: self.path.to_string(),
            rows: self.rows,
            bytes: self.encoder.bytes_written() as u64,
            version: None,
            files: vec![self.path.to_string()],
        };
        if let Some(listings) = runtime.cache_manager.get_list_files_cache() {
            listings.remove(&TableScopedPath {
                table: self.url.get_table_ref().clone(),
                path: self.url.prefix().clone(),
            });
        }
        writes.committed(&self.table);
        if let Some(dir) = self.local_dir {
            let swept = tokio::task::spawn_blocking(move || sweep_staging_files(&dir)).await;
            if let Ok(Err(e)) = swept {
                log::warn!(
                    "table '{}': cannot remove old staging files: {e}",
                    self.table
                );
            }
        }
        Ok(Some(committed))
    }

    /// Abandons the object: nothing of it becomes visible.
    pub(crate) async fn abort(self) {
        let path = self.path.clone();
        if let Err(e) = self.encoder.into_sink().abort().await {
            log::warn!("aborting the unfinished write of {path} failed: {e}");
        }
    }

    fn storage_error(&self, error: &dyn std::fmt::Display) -> EngineError {
        EngineError::Storage(format!(
            "writing to table '{}' failed: {error}; nothing was written",
            self.table
        ))
    }
}

/// Removes the staging files (`<name>.parquet#<n>`) in `dir` older than
/// [`STAGING_FILES_KEPT_FOR`].
fn sweep_staging_files(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let staging = name
            .to_str()
            .and_then(|n| n.split_once(".parquet#"))
            .is_some_and(|(_, number)| {
                !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
            });
        if !staging {
            continue;
        }
        let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
        if age > STAGING_FILES_KEPT_FOR {
            std::fs::remove_file(entry.path())?;
            log::info!(
                "removed an abandoned staging file, {}",
                entry.path().display()
            );
        }
    }
    Ok(())
}

/// A new object's name: ordered by time, unique by a random part.
fn object_name() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "part-{millis:013}-{}.parquet",
        uuid::Uuid::new_v4().simple()
    )
}
