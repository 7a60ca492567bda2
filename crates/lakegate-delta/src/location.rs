//! Where one Delta table lives: a log store over the table's prefix of its
//! storage location's object store.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use deltalake_core::kernel::Snapshot;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoArrow;
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::{DeltaTable, DeltaTableError};
use object_store::ObjectStore;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use url::Url;

use crate::version::TableVersion;

/// What the Delta library reports: an unreadable log, a missing version, a
/// commit that lost to another writer, a storage failure.
pub type DeltaError = DeltaTableError;

/// Whether `error` is a commit that lost to other writers' commits past
/// every retry (the write may simply be tried again).
pub fn is_conflict(error: &DeltaError) -> bool {
    use deltalake_core::kernel::transaction::TransactionError;
    matches!(
        error,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_)
        }
    )
}

/// One Delta table: its transaction log and data files, read and written
/// through the object store of its storage location.
#[derive(Clone)]
pub struct DeltaLocation {
    url: Url,
    log_store: LogStoreRef,
}

impl std::fmt::Debug for DeltaLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaLocation")
            .field("url", &self.url.as_str())
            .finish()
    }
}

impl DeltaLocation {
    /// The table at `table_url`, whose path is the table's prefix in
    /// `root_store` (a store whose paths start at its root). The URL's
    /// scheme and host name the store as the engine's runtime registers
    /// it, so that scans find the same store.
    pub fn new(root_store: Arc<dyn ObjectStore>, table_url: &Url) -> Result<Self, DeltaError> {
        let mut url = table_url.clone();
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let prefix = Path::from_url_path(url.path())
            .map_err(|e| DeltaTableError::InvalidTableLocation(format!("{url}: {e}")))?;
        let prefixed: Arc<dyn ObjectStore> =
            Arc::new(PrefixStore::new(Arc::clone(&root_store), prefix));
        let log_store = default_logstore(prefixed, root_store, &url, &StorageConfig::default());
        Ok(Self { url, log_store })
    }

    /// The table's URL (with a trailing `/`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The library's log store of the table.
    pub fn log_store(&self) -> &LogStoreRef {
        &self.log_store
    }

    /// Whether the prefix holds a Delta table (a `_delta_log` with commits).
    pub async fn is_table(&self) -> Result<bool, DeltaError> {
        self.log_store.is_delta_table_location().await
    }

    /// The table's snapshot at `version` (the latest when `None`).
    pub async fn snapshot(&self, version: Option<u64>) -> Result<Snapshot, DeltaError> {
        Snapshot::try_new(self.log_store.as_ref(), version).await
    }

    /// The latest version's columns, as Arrow types.
    pub async fn schema(&self) -> Result<SchemaRef, DeltaError> {
        let snapshot = self.snapshot(None).await?;
        arrow_schema(&snapshot)
    }

    /// The version number `version` names: `None` for the latest.
    pub async fn resolve(&self, version: &TableVersion) -> Result<Option<u64>, DeltaError> {
        match version {
            TableVersion::Latest => Ok(None),
            TableVersion::Number(number) => Ok(Some(*number)),
            TableVersion::AsOf(time) => self.version_at(*time).await.map(Some),
        }
    }

    /// The last version committed at or before `time`; an error when the
    /// first commit came later (the library would answer the first version).
    async fn version_at(&self, time: DateTime<Utc>) -> Result<u64, DeltaError> {
        let none_then = || {
            DeltaTableError::Generic(format!(
                "no version of the table had been committed at {}",
                time.to_rfc3339()
            ))
        };
        let mut table = DeltaTable::new(Arc::clone(&self.log_store));
        table.load_with_datetime(time).await?;
        let version = table.version().ok_or_else(none_then)?;
        let committed = table.snapshot()?.version_timestamp(version);
        if committed.is_some_and(|millis| millis > time.timestamp_millis()) {
            return Err(none_then());
        }
        Ok(version)
    }
}

/// A snapshot's columns as Arrow types, or an error for a type Arrow
/// cannot hold (the library's own conversion panics there).
pub(crate) fn arrow_schema(snapshot: &Snapshot) -> Result<SchemaRef, DeltaError> {
    let schema: arrow::datatypes::Schema =
        snapshot.schema().as_ref().try_into_arrow().map_err(|e| {
            DeltaTableError::Generic(format!("the table's schema has no Arrow form: {e}"))
        })?;
    Ok(Arc::new(schema))
}
