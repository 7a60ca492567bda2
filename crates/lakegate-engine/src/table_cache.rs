//! The table cache: stored tables kept in memory as decoded Arrow batches,
//! for lakes whose tables are scanned again and again (dashboards, notebooks
//! re-running a cell, Spark jobs reading a dimension table per task).
//!
//! ```text
//!   scan ─▶ list the table's files (the listing cache) ─▶ same files as the kept copy?
//!              yes: the kept batches (MemorySourceConfig)   no: the Parquet scan,
//!                                                               and a background load
//!                                                               of the whole table
//! ```
//!
//! It lies beneath every policy: it holds the stored values, and only the
//! places that read stored tables (policy plans, a role that sees a table
//! unrestricted) reach it, exactly as they reach the Parquet files. A kept
//! copy is valid for one set of files (path, size and modification time of
//! each): a file added, removed or rewritten is a new set, seen when the
//! listing is (`EngineOptions::file_listing_ttl`), and the old copy is
//! dropped. Tables are loaded whole (every column) when first scanned; one
//! that does not fit the cache's budget is never kept, and the least recently
//! scanned tables make room for a new one. Off by default
//! (`EngineOptions::table_cache_bytes` = 0): the memory is the operator's
//! choice, and it is outside any query's memory limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use futures::TryStreamExt;
use lakegate_policy::TableName;

/// Marks a planning context that only checks plans (catalog validation at
/// start-up): its scans neither read nor load the cache, so that starting a
/// server loads nothing a query has not asked for.
#[derive(Debug)]
pub(crate) struct CheckOnly;

/// The files a kept copy was read from: path, size and modification time
/// (milliseconds) of each, sorted.
type FileSet = Vec<(String, u64, i64)>;

/// The engine's table cache: at most `limit` bytes of decoded batches.
#[derive(Debug)]
pub(crate) struct TableCache {
    limit: usize,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    tables: HashMap<TableName, Entry>,
    /// Bytes held by loaded entries.
    used: usize,
    /// Advances on every lookup: entries remember when they were last used.
    clock: u64,
}

#[derive(Debug)]
enum Entry {
    /// Being read by a background load.
    Loading(FileSet),
    /// Kept: the table's batches, by partition.
    Loaded {
        files: FileSet,
        partitions: Arc<Vec<Vec<RecordBatch>>>,
        bytes: usize,
        last_used: u64,
    },
    /// Larger than the whole cache: not tried again until the table's
    /// files change.
    NotKept(FileSet),
}

/// What loading a table came to.
enum Loaded {
    /// The table's batches, by partition.
    Batches(Vec<Vec<RecordBatch>>),
    /// It did not fit the cache.
    TooLarge,
    /// Reading it failed.
    Failed,
}

/// What a scan finds in the cache.
enum Lookup {
    /// The table's batches, read from the files it has now.
    Hit(Arc<Vec<Vec<RecordBatch>>>),
    /// Nothing for these files yet: the caller should start loading them.
    Load,
    /// Loading already, or not to be kept.
    Pass,
}

impl TableCache {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            state: Mutex::default(),
        }
    }

    fn lookup(&self, table: &TableName, files: &FileSet) -> Lookup {
        let mut state = self.state.lock().expect("table cache lock");
        state.clock += 1;
        let now = state.clock;
        let freed = match state.tables.get_mut(table) {
            Some(Entry::Loaded {
                files: kept,
                partitions,
                last_used,
                ..
            }) if kept == files => {
                *last_used = now;
                return Lookup::Hit(Arc::clone(partitions));
            }
            Some(Entry::Loading(kept) | Entry::NotKept(kept)) if kept == files => {
                return Lookup::Pass;
            }
            // Another set of files: the old copy goes.
            Some(Entry::Loaded { bytes, .. }) => *bytes,
            // Nothing yet, or a load or refusal for other files.
            _ => 0,
        };
        state.used -= freed;
        state
            .tables
            .insert(table.clone(), Entry::Loading(files.clone()));
        Lookup::Load
    }

    /// Keeps a loaded table, making room by dropping the least recently
    /// used ones. A table too large is marked not to be kept (for these
    /// files); a load that failed is forgotten, so that a later scan tries
    /// again (storage errors are often transient).
    fn finish(&self, table: &TableName, files: FileSet, loaded: Loaded) {
        let mut state = self.state.lock().expect("table cache lock");
        // The files changed while it loaded: a newer load owns the entry.
        if !matches!(state.tables.get(table), Some(Entry::Loading(f)) if *f == files) {
            return;
        }
        let partitions = match loaded {
            Loaded::Batches(partitions) if batches_bytes(&partitions) <= self.limit => partitions,
            Loaded::Batches(_) | Loaded::TooLarge => {
                state.tables.insert(table.clone(), Entry::NotKept(files));
                return;
            }
            Loaded::Failed => {
                state.tables.remove(table);
                return;
            }
        };
        let bytes = batches_bytes(&partitions);
        while state.used + bytes > self.limit {
            let oldest = state
                .tables
                .iter()
                .filter_map(|(name, entry)| match entry {
                    Entry::Loaded {
                        last_used, bytes, ..
                    } => Some((*last_used, *bytes, name.clone())),
                    _ => None,
                })
                .min();
            let Some((_, freed, name)) = oldest else {
                break;
            };
            state.tables.remove(&name);
            state.used -= freed;
        }
        state.used += bytes;
        let last_used = state.clock;
        state.tables.insert(
            table.clone(),
            Entry::Loaded {
                files,
                partitions: Arc::new(partitions),
                bytes,
                last_used,
            },
        );
    }
}

fn batches_bytes(partitions: &[Vec<RecordBatch>]) -> usize {
    partitions
        .iter()
        .flatten()
        .map(RecordBatch::get_array_memory_size)
        .sum()
}

/// Where `raw`'s statistics are read without reading its rows: a cached
/// table's files (its scan would start loading it into memory), any other
/// table itself.
pub(crate) fn statistics_source(raw: &Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
    match raw.downcast_ref::<CachedTable>() {
        Some(cached) => Arc::clone(&cached.files) as Arc<dyn TableProvider>,
        None => Arc::clone(raw),
    }
}

/// A stored table read through the engine's table cache.
#[derive(Debug)]
pub(crate) struct CachedTable {
    name: TableName,
    files: Arc<ListingTable>,
    cache: Arc<TableCache>,
}

impl CachedTable {
    pub(crate) fn new(name: TableName, files: Arc<ListingTable>, cache: Arc<TableCache>) -> Self {
        Self { name, files, cache }
    }

    /// Reads the whole table in the background, all partitions at once
    /// (they share the scan's files), and keeps it if it fits.
    fn load(&self, files: FileSet, plan: Arc<dyn ExecutionPlan>, context: Arc<TaskContext>) {
        let cache = Arc::clone(&self.cache);
        let table = self.name.clone();
        let limit = self.cache.limit;
        tokio::spawn(async move {
            let read = Arc::new(AtomicUsize::new(0));
            let parts = (0..plan.output_partitioning().partition_count()).map(|part| {
                let (plan, context, read) = (Arc::clone(&plan), Arc::clone(&context), &read);
                async move {
                    let mut stream = plan.execute(part, context)?;
                    let mut batches = Vec::new();
                    while let Some(batch) = stream.try_next().await? {
                        let bytes = batch.get_array_memory_size();
                        // Stop reading a table that cannot fit.
                        if read.fetch_add(bytes, Ordering::Relaxed) + bytes > limit {
                            return Ok(None);
                        }
                        batches.push(batch);
                    }
                    Ok::<_, datafusion::error::DataFusionError>(Some(batches))
                }
            });
            let loaded = match futures::future::try_join_all(parts).await {
                Ok(parts) => match parts.into_iter().collect::<Option<Vec<_>>>() {
                    Some(partitions) => Loaded::Batches(partitions),
                    None => Loaded::TooLarge,
                },
                Err(e) => {
                    log::warn!("table cache: cannot load {table}: {e}");
                    Loaded::Failed
                }
            };
            cache.finish(&table, files, loaded);
        });
    }
}

#[async_trait]
impl TableProvider for CachedTable {
    fn schema(&self) -> SchemaRef {
        self.files.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Never exact: a scan from memory applies no filter, so DataFusion
        // must keep every filter above the scan (the Parquet scan prunes
        // with them all the same).
        Ok(self
            .files
            .supports_filters_pushdown(filters)?
            .into_iter()
            .map(|support| match support {
                TableProviderFilterPushDown::Exact => TableProviderFilterPushDown::Inexact,
                other => other,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if state.config().get_extension::<CheckOnly>().is_some() {
            return self.files.scan(state, projection, filters, limit).await;
        }
        let listed = self.files.list_files_for_scan(state, &[], None).await?;
        let mut files: FileSet = listed
            .file_groups
            .iter()
            .flat_map(|group| group.iter())
            .map(|file| {
                let meta = &file.object_meta;
                let modified = meta.last_modified.timestamp_millis();
                (meta.location.to_string(), meta.size, modified)
            })
            .collect();
        files.sort();
        match self.cache.lookup(&self.name, &files) {
            Lookup::Hit(partitions) => {
                let source =
                    MemorySourceConfig::try_new(&partitions, self.schema(), projection.cloned())?
                        .with_limit(limit);
                return Ok(DataSourceExec::from_data_source(source));
            }
            Lookup::Load => match self.files.scan(state, None, &[], None).await {
                Ok(whole) => self.load(files, whole, state.task_ctx()),
                // The scan below fails the same way, and says why.
                Err(_) => self.cache.finish(&self.name, files, Loaded::Failed),
            },
            Lookup::Pass => {}
        }
        self.files.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    /// A table of one batch of `rows` Int64 values, and its size.
    fn table(rows: usize) -> (Vec<Vec<RecordBatch>>, usize) {
        let values = Int64Array::from_iter_values(0..rows as i64);
        let batch = RecordBatch::try_from_iter([("v", Arc::new(values) as _)]).unwrap();
        let bytes = batch.get_array_memory_size();
        (vec![vec![batch]], bytes)
    }

    fn files(name: &str) -> FileSet {
        vec![(name.to_string(), 1, 0)]
    }

    fn is_hit(lookup: Lookup) -> bool {
        matches!(lookup, Lookup::Hit(_))
    }

    fn load(cache: &TableCache, name: &TableName, loaded: Loaded) {
        assert!(matches!(cache.lookup(name, &files("f")), Lookup::Load));
        cache.finish(name, files("f"), loaded);
    }

    #[test]
    fn the_least_recently_scanned_table_makes_room() {
        let (_, bytes) = table(1000);
        let cache = TableCache::new(2 * bytes + bytes / 2);
        let [a, b, c] = ["a", "b", "c"].map(|t| TableName::new("db", t));
        for name in [&a, &b] {
            load(&cache, name, Loaded::Batches(table(1000).0));
        }
        assert!(is_hit(cache.lookup(&a, &files("f"))));
        load(&cache, &c, Loaded::Batches(table(1000).0));
        // b was scanned least recently.
        assert!(is_hit(cache.lookup(&a, &files("f"))));
        assert!(is_hit(cache.lookup(&c, &files("f"))));
        assert!(matches!(cache.lookup(&b, &files("f")), Lookup::Load));
        assert_eq!(cache.state.lock().unwrap().used, 2 * bytes);
    }

    #[test]
    fn other_files_replace_a_copy_and_a_refusal() {
        let (_, bytes) = table(10);
        let cache = TableCache::new(10 * bytes);
        let name = TableName::new("db", "t");
        load(&cache, &name, Loaded::Batches(table(10).0));
        // New files: the kept copy is dropped and a load is due.
        assert!(matches!(cache.lookup(&name, &files("g")), Lookup::Load));
        assert_eq!(cache.state.lock().unwrap().used, 0);
        // A load for the old files that ends now keeps nothing.
        cache.finish(&name, files("f"), Loaded::Batches(table(10).0));
        assert!(matches!(cache.lookup(&name, &files("g")), Lookup::Pass));
        cache.finish(&name, files("g"), Loaded::TooLarge);
        assert!(matches!(cache.lookup(&name, &files("g")), Lookup::Pass));
        assert!(matches!(cache.lookup(&name, &files("h")), Lookup::Load));
    }

    #[test]
    fn a_table_too_large_is_refused_and_a_failed_load_is_retried() {
        let (_, bytes) = table(1000);
        let cache = TableCache::new(bytes / 2);
        let name = TableName::new("db", "t");
        load(&cache, &name, Loaded::Batches(table(1000).0));
        assert!(matches!(cache.lookup(&name, &files("f")), Lookup::Pass));
        let other = TableName::new("db", "u");
        load(&cache, &other, Loaded::Failed);
        load(&cache, &other, Loaded::Batches(table(1).0));
        assert!(is_hit(cache.lookup(&other, &files("f"))));
    }
}
