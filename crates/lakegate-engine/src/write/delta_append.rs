//! Committing a write to a Delta table: the statement's checked rows are
//! appended by one commit to the table's log (see `lakegate_delta`), so a
//! reader sees the version before or the version after, never part of the
//! write. Data files of a commit that fails are in no version: readers
//! never see them, and the table's `VACUUM` removes them.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use lakegate_delta::{DeltaError, DeltaLocation};
use lakegate_policy::TableName;

use super::commit::{CommittedObject, TableWrites};
use crate::error::{EngineError, Result};

/// One statement's rows on their way into a Delta table.
pub(crate) struct PendingAppend {
    table: TableName,
    location: DeltaLocation,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: u64,
    bytes: usize,
    max_bytes: usize,
    /// Whether the commit creates the table (version 0).
    creating: bool,
}

impl PendingAppend {
    /// Starts an append to `table` at `location`, of rows of `schema`; at
    /// most `max_bytes` of Arrow data are held for it.
    pub(crate) fn start(
        table: &TableName,
        location: DeltaLocation,
        schema: SchemaRef,
        max_bytes: usize,
    ) -> Self {
        Self {
            table: table.clone(),
            location,
            schema,
            batches: Vec::new(),
            rows: 0,
            bytes: 0,
            max_bytes,
            creating: false,
        }
    }

    /// Starts the creation of `table` at `location` (its version 0, made
    /// even when no row is written), of rows of `schema`.
    pub(crate) fn start_creating(
        table: &TableName,
        location: DeltaLocation,
        schema: SchemaRef,
        max_bytes: usize,
    ) -> Self {
        Self {
            creating: true,
            ..Self::start(table, location, schema, max_bytes)
        }
    }

    /// The schema the appended batches must have.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Adds `batch`; past the byte limit the write fails.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.bytes += super::arrow_bytes(batch);
        if self.bytes > self.max_bytes {
            return Err(EngineError::ResourceExhausted(format!(
                "the write to table '{}' is larger than the {} bytes one statement may write \
                 (--max-write-bytes); nothing was written",
                self.table, self.max_bytes
            )));
        }
        self.rows += batch.num_rows() as u64;
        self.batches.push(batch.clone());
        Ok(())
    }

    /// Commits the rows as one new version (nothing, when there is no row).
    pub(crate) async fn commit(mut self, writes: &TableWrites) -> Result<Option<CommittedObject>> {
        if self.rows == 0 && !self.creating {
            return Ok(None);
        }
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let appended = if self.creating {
            if self.batches.is_empty() {
                // The library takes the new table's columns from the rows.
                self.batches
                    .push(RecordBatch::new_empty(std::sync::Arc::clone(&self.schema)));
            }
            lakegate_delta::create(&self.location, self.batches, properties).await
        } else {
            lakegate_delta::append(&self.location, self.batches, properties).await
        }
        .map_err(|e| commit_error(&self.table, &e))?;
        writes.committed(&self.table);
        let table_path = self.location.url().path().trim_start_matches('/');
        let mut files: Vec<String> = appended
            .files
            .iter()
            .map(|file| format!("{table_path}{file}"))
            .collect();
        let path = files.first().cloned().unwrap_or_default();
        files.push(format!(
            "{table_path}_delta_log/{:020}.json",
            appended.version
        ));
        Ok(Some(CommittedObject {
            path,
            rows: self.rows,
            bytes: appended.bytes,
            version: Some(appended.version),
            files,
        }))
    }
}

/// Why a commit failed, for the caller: losing to other writers past every
/// retry, or a storage failure; either way nothing was written.
fn commit_error(table: &TableName, error: &DeltaError) -> EngineError {
    if lakegate_delta::is_conflict(error) {
        return EngineError::Storage(format!(
            "the write to Delta table '{table}' conflicted with other writers' commits: {error}; \
             nothing was written, try again"
        ));
    }
    EngineError::Storage(format!(
        "writing to Delta table '{table}' failed: {error}; nothing was written"
    ))
}
