//! Appending to a Delta table: the rows are written as new Parquet files
//! under the table's prefix, then made part of the table by one commit to
//! its log. Until the commit lands no reader sees them; a commit that loses
//! a race with another writer is retried by the library when the two do
//! not conflict (appends never do), and reported otherwise.

use arrow::array::RecordBatch;
use deltalake_core::DeltaTable;
use deltalake_core::kernel::Action;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::logstore::get_actions;
use deltalake_core::parquet::file::properties::WriterProperties;
use deltalake_core::protocol::SaveMode;

use crate::location::{DeltaError, DeltaLocation};

/// How many times a commit is tried again after losing to another writer.
const COMMIT_ATTEMPTS: usize = 100;

/// A committed append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The table version the commit made.
    pub version: u64,
    /// The data files it added, relative to the table.
    pub files: Vec<String>,
    /// Their size in bytes.
    pub bytes: u64,
}

/// Appends `batches` (of the table's columns) to the table at `location`
/// in one commit, writing its files with `properties`.
pub async fn append(
    location: &DeltaLocation,
    batches: Vec<RecordBatch>,
    properties: WriterProperties,
) -> Result<Appended, DeltaError> {
    let mut table = DeltaTable::new(std::sync::Arc::clone(location.log_store()));
    table.load().await?;
    commit(location, table, batches, properties, SaveMode::Append).await
}

/// Creates a Delta table at `location` holding `batches` (its columns are
/// theirs) as version 0; refused when a table is there already.
pub async fn create(
    location: &DeltaLocation,
    batches: Vec<RecordBatch>,
    properties: WriterProperties,
) -> Result<Appended, DeltaError> {
    let table = DeltaTable::new(std::sync::Arc::clone(location.log_store()));
    commit(
        location,
        table,
        batches,
        properties,
        SaveMode::ErrorIfExists,
    )
    .await
}

async fn commit(
    location: &DeltaLocation,
    table: DeltaTable,
    batches: Vec<RecordBatch>,
    properties: WriterProperties,
    mode: SaveMode,
) -> Result<Appended, DeltaError> {
    let table = table
        .write(batches)
        .with_save_mode(mode)
        .with_writer_properties(properties)
        .with_commit_properties(CommitProperties::default().with_max_retries(COMMIT_ATTEMPTS))
        .await?;
    let version = table
        .version()
        .ok_or_else(|| DeltaError::Generic("the append committed no version".into()))?;
    // What the commit added, from its own log entry.
    let entry = location
        .log_store()
        .read_commit_entry(version)
        .await?
        .ok_or_else(|| DeltaError::Generic(format!("commit {version} cannot be read back")))?;
    let mut files = Vec::new();
    let mut bytes = 0;
    for action in get_actions(version, &entry)? {
        if let Action::Add(add) = action {
            bytes += u64::try_from(add.size).unwrap_or(0);
            files.push(add.path);
        }
    }
    Ok(Appended {
        version,
        files,
        bytes,
    })
}
