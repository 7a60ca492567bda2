//! The engine: the policy version it serves (swapped whole when the policy
//! changes; versions are built in `lake_build.rs`), and sessions that run
//! SQL under one runtime role.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionConfig;
use lakegate_catalog::{Catalog, CatalogError, CatalogErrors, LoadOptions, RequestTotals};
use lakegate_policy::{EffectiveAccess, TableName};
use lakegate_policy::{Principal, RoleError};

use crate::distribution::Workers;
use crate::error::{EngineError, Result};
use crate::lake::Lake;
use crate::lake_build::build_lake_on_executor;
use crate::parse::DEFAULT_MAX_STATEMENT_BYTES;
use crate::session::QuerySession;
use crate::table_cache::TableCache;
use crate::write::TableWrites;

/// What an engine serves, in counts (shown as the counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSummary {
    /// The catalog's name.
    pub name: String,
    /// How many databases, tables, roles, users and grants it has.
    pub databases: usize,
    /// See `databases`.
    pub tables: usize,
    /// See `databases`.
    pub roles: usize,
    /// See `databases`.
    pub users: usize,
    /// See `databases`.
    pub grants: usize,
    /// How many tag keys, tag masks and tag row filters it has.
    pub tags: usize,
    /// See `tags`.
    pub tag_masks: usize,
    /// See `tags`.
    pub tag_row_filters: usize,
}

impl std::fmt::Display for CatalogSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} database(s), {} table(s), {} role(s), {} user(s), {} grant(s)",
            self.databases, self.tables, self.roles, self.users, self.grants
        )?;
        if self.tags + self.tag_masks + self.tag_row_filters > 0 {
            write!(
                f,
                ", {} tag(s), {} tag mask(s), {} tag row filter(s)",
                self.tags, self.tag_masks, self.tag_row_filters
            )?;
        }
        Ok(())
    }
}

/// Settings of an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Partitions a query is split into (DataFusion's `target_partitions`).
    pub target_partitions: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// The audit log's directory: lake administrators query it as
    /// `system.audit`. Without it there is no `system` database.
    pub audit_dir: Option<PathBuf>,
    /// Memory one query may hold, in bytes (DataFusion's memory pool, one
    /// per query; operators that can spill to disk do so at the limit, the
    /// others fail with RESOURCE_EXHAUSTED). `None`: no limit.
    pub query_memory: Option<usize>,
    /// How long a table's file list is trusted before it is listed again:
    /// files added to or removed from a table's prefix show up within this
    /// time. DataFusion's list-files cache and Lakegate's scan plans (which
    /// hold file lists) both expire after it.
    pub file_listing_ttl: Duration,
    /// Whether a secured table reuses its scan plans (per scan shape, for
    /// the file listing TTL). Off, every scan is planned from the table's
    /// optimized policy plan: for measuring what the reuse saves.
    pub reuse_scan_plans: bool,
    /// Whether a query's logical plan, and its optimized plan when it does
    /// not read the clock, are reused for the same user, role, current
    /// database and text (a Flight SQL client plans each statement three
    /// times). Off, every statement is planned and optimized from its text:
    /// for measuring planning itself.
    pub reuse_statement_plans: bool,
    /// Bytes of Parquet footers (file metadata) kept in memory across
    /// queries, per file and validated by its size and modification time,
    /// so that a repeated query reads no footer again; 0 turns the cache off.
    pub metadata_cache_bytes: usize,
    /// Bytes of file listings kept for the file listing TTL (about 200 bytes
    /// an object: the default holds some 150,000 objects). A table whose
    /// listing does not fit is listed by every query.
    pub listing_cache_bytes: usize,
    /// Bytes of decoded tables kept in memory across queries (the table
    /// cache: whole tables, by their set of files, least recently scanned
    /// dropped first); 0, the default, keeps none.
    pub table_cache_bytes: usize,
    /// Whether results keep Arrow's view types (`Utf8View`, `BinaryView`),
    /// for clients that want them; by default they leave as `Utf8` and
    /// `Binary`, which every client reads (see `wire.rs`). Inside the
    /// engine text is always in view types, where they are fast.
    pub view_types: bool,
    /// The longest statement accepted, in bytes, checked before it is read.
    pub max_statement_bytes: usize,
    /// The most Parquet one write (an `INSERT`, one bulk ingestion) may
    /// write, in bytes; past it the write fails and nothing is written.
    pub max_write_bytes: usize,
    /// Scalar functions user SQL may call besides DataFusion's own, for
    /// embedding applications (and tests); policies never see them.
    pub functions: Vec<Arc<ScalarUDF>>,
    /// Workers that large queries run across (`distribution.rs`); `None`,
    /// every query runs in this process.
    pub workers: Option<Workers>,
    /// Whether Parquet scans apply their filters while decoding (DataFusion's
    /// `pushdown_filters`, with `reorder_filters`): the filter's columns are
    /// decoded first and the others only for the rows that pass. A join's
    /// or a top-k sort's dynamic filter then drops rows in the scan, not
    /// only whole row groups. See docs/performance.md for what it measured.
    pub parquet_filter_pushdown: bool,
    /// The fewest rows a secured table's scan must be estimated to return
    /// for a dynamic filter to pass its policy barrier. Such a filter skips
    /// whole files and row groups (with `parquet_filter_pushdown` off), so a
    /// smaller scan gains nothing from it, while pushing it costs planning
    /// time on every query. 0: always.
    pub dynamic_filter_min_rows: usize,
    /// Whether clusters of inner joins are reordered by estimated cost
    /// (`ReorderJoinsByEstimate`, docs/performance.md); off, joins run in
    /// the order the query writes them, as in DataFusion.
    pub reorder_joins: bool,
}

/// The default [`EngineOptions::dynamic_filter_min_rows`]: one batch.
pub const DEFAULT_DYNAMIC_FILTER_MIN_ROWS: usize = 8192;

/// The default [`EngineOptions::parquet_filter_pushdown`].
pub const DEFAULT_PARQUET_FILTER_PUSHDOWN: bool = false;

/// The default [`EngineOptions::max_write_bytes`]: 1 GiB.
pub const DEFAULT_MAX_WRITE_BYTES: usize = 1024 * 1024 * 1024;

/// The default [`EngineOptions::file_listing_ttl`].
pub const DEFAULT_FILE_LISTING_TTL: Duration = Duration::from_secs(60);

/// The default [`EngineOptions::metadata_cache_bytes`]: 64 MiB.
pub const DEFAULT_METADATA_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The default [`EngineOptions::listing_cache_bytes`]: 32 MiB (DataFusion's
/// own default, 1 MiB, holds no more than about 5,000 objects).
pub const DEFAULT_LISTING_CACHE_BYTES: usize = 32 * 1024 * 1024;

impl EngineOptions {
    /// What these options ask of DataFusion's caches: the list-files cache
    /// for the file listing TTL, and the footer cache's size. Benchmarks give
    /// their plain DataFusion baselines the same, so that only Lakegate's
    /// code differs.
    pub fn cache_config(&self) -> CacheManagerConfig {
        CacheManagerConfig::default()
            .with_list_files_cache_ttl(Some(self.file_listing_ttl))
            .with_list_files_cache_limit(self.listing_cache_bytes)
            .with_metadata_cache_limit(self.metadata_cache_bytes)
    }

    /// DataFusion's settings these options ask for: partitions, batch size
    /// and how Parquet is scanned. Benchmarks give their plain DataFusion
    /// baselines the same.
    pub fn session_config(&self) -> SessionConfig {
        let mut config = SessionConfig::new()
            .with_target_partitions(self.target_partitions)
            .with_batch_size(self.batch_size);
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = self.parquet_filter_pushdown;
        parquet.reorder_filters = self.parquet_filter_pushdown;
        config
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            target_partitions: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            batch_size: 8192,
            audit_dir: None,
            query_memory: None,
            file_listing_ttl: DEFAULT_FILE_LISTING_TTL,
            reuse_scan_plans: true,
            reuse_statement_plans: true,
            metadata_cache_bytes: DEFAULT_METADATA_CACHE_BYTES,
            listing_cache_bytes: DEFAULT_LISTING_CACHE_BYTES,
            table_cache_bytes: 0,
            view_types: false,
            max_statement_bytes: DEFAULT_MAX_STATEMENT_BYTES,
            max_write_bytes: DEFAULT_MAX_WRITE_BYTES,
            functions: Vec::new(),
            workers: None,
            parquet_filter_pushdown: DEFAULT_PARQUET_FILTER_PUSHDOWN,
            dynamic_filter_min_rows: DEFAULT_DYNAMIC_FILTER_MIN_ROWS,
            reorder_joins: true,
        }
    }
}

/// Runs SQL under runtime roles over a catalog's tables. Cheap to clone:
/// clones share the policy they serve, and a policy change installed through
/// one ([`Engine::install`]) is what every clone serves next.
#[derive(Debug, Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// The policy version served now: each session takes the current one
    /// when it opens and keeps it (a running query never changes version).
    current: Arc<RwLock<Arc<Lake>>>,
}

/// What every policy version of an engine shares: the options, the runtime
/// (caches of file listings, footers and statistics, the spill directory)
/// and the table cache.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: EngineOptions,
    pub(crate) runtime: Arc<RuntimeEnv>,
    pub(crate) table_cache: Option<Arc<TableCache>>,
    /// Writes committed per table, for every version's readers.
    pub(crate) table_writes: Arc<TableWrites>,
}

/// A catalog checked and ready to serve as a new policy version
/// ([`Engine::prepare`]), not yet served ([`Engine::install`]).
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    lake: Arc<Lake>,
}

impl PolicySnapshot {
    /// The catalog this version serves.
    pub fn catalog(&self) -> &Catalog {
        self.lake.catalog()
    }

    /// Its policy version.
    pub fn version(&self) -> i64 {
        self.lake.version()
    }

    /// What `role` may see of each table it has a grant on (of `table` only,
    /// when given): the same decision every query of the role's gets.
    pub fn access(&self, role: &str, table: Option<&TableName>) -> Result<Vec<EffectiveAccess>> {
        let catalog = self.lake.catalog();
        if catalog.policy.role(role).is_none() {
            return Err(EngineError::PermissionDenied(format!(
                "unknown role '{role}'"
            )));
        }
        let names: Vec<&TableName> = match table {
            Some(name) => match catalog.tables.get_key_value(name) {
                Some((name, _)) => vec![name],
                None => {
                    return Err(EngineError::PermissionDenied(format!(
                        "unknown table '{name}'"
                    )));
                }
            },
            None => catalog.tables.keys().collect(),
        };
        Ok(names
            .into_iter()
            .filter_map(|name| self.lake.access_of(role, name))
            .collect())
    }
}

/// The error of a catalog that cannot be served, as one catalog error.
pub(crate) fn engine_error(message: String) -> CatalogErrors {
    CatalogErrors(vec![CatalogError {
        file: Default::default(),
        entry: "engine".into(),
        message,
    }])
}

impl Engine {
    /// Builds an engine on `catalog`, checking every row filter and mask with
    /// the query planner. A catalog that fails any check is refused, with all
    /// problems listed. It serves policy version 0.
    pub async fn new(catalog: Catalog, options: EngineOptions) -> Result<Self, CatalogErrors> {
        Self::new_at(catalog, options, 0).await
    }

    /// [`Engine::new`], serving `catalog` as policy version `version` (of a
    /// policy store).
    pub async fn new_at(
        catalog: Catalog,
        options: EngineOptions,
        version: i64,
    ) -> Result<Self, CatalogErrors> {
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(options.cache_config())
            .build_arc()
            .map_err(|e| engine_error(format!("cannot set up the runtime: {e}")))?;
        let table_cache = (options.table_cache_bytes > 0)
            .then(|| Arc::new(TableCache::new(options.table_cache_bytes)));
        let shared = Arc::new(Shared {
            options,
            runtime,
            table_cache,
            table_writes: Arc::default(),
        });
        let lake = build_lake_on_executor(Arc::clone(&shared), catalog, version, None).await?;
        Ok(Self {
            shared,
            current: Arc::new(RwLock::new(lake)),
        })
    }

    /// Checks `catalog` as [`Engine::new`] does, as policy version `version`
    /// of this engine (sharing its caches), without serving it yet. Grants
    /// and combined policies the version served now has checked already, on
    /// tables of the same schema, are not planned again: a change is checked
    /// in proportion to what it changes.
    pub async fn prepare(
        &self,
        catalog: Catalog,
        version: i64,
    ) -> Result<PolicySnapshot, CatalogErrors> {
        let served = Some(self.lake());
        let lake =
            build_lake_on_executor(Arc::clone(&self.shared), catalog, version, served).await?;
        Ok(PolicySnapshot { lake })
    }

    /// Serves `snapshot` from now on, unless the engine serves a version at
    /// least as new already (changes arriving out of order). Sessions opened
    /// before keep the version they opened with. Whether it was installed.
    pub fn install(&self, snapshot: PolicySnapshot) -> bool {
        let mut current = self
            .current
            .write()
            .expect("the policy lock is never poisoned");
        if snapshot.version() <= current.version() {
            return false;
        }
        let replaced = std::mem::replace(&mut *current, snapshot.lake);
        drop(current);
        // Freeing a large catalog takes milliseconds: not on the caller's
        // time, who is answering a statement or serving a new version.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(replaced))),
            Err(_) => drop(replaced),
        }
        true
    }

    /// The policy version served now.
    pub fn policy_version(&self) -> i64 {
        self.lake().version()
    }

    /// The policy served now.
    pub fn snapshot(&self) -> PolicySnapshot {
        PolicySnapshot { lake: self.lake() }
    }

    /// The lake of the current policy version.
    fn lake(&self) -> Arc<Lake> {
        Arc::clone(
            &self
                .current
                .read()
                .expect("the policy lock is never poisoned"),
        )
    }

    /// Checks the catalog in `dir` as thoroughly as it can: every mistake
    /// the loader finds, and those planning finds in the row filters and
    /// masks of everything else (a broken storage location does not hide a
    /// misspelt column elsewhere, nor repeat itself in every grant on its
    /// tables). The engine, when there is none.
    pub async fn check_catalog(
        dir: &Path,
        load: &LoadOptions,
        options: EngineOptions,
    ) -> Result<Self, CatalogErrors> {
        let (catalog, mut errors) = Catalog::check(dir, load).await?;
        match Self::new(catalog, options).await {
            Ok(engine) if errors.is_empty() => return Ok(engine),
            Ok(_) => {}
            Err(found) => errors.extend(found.0),
        }
        Err(CatalogErrors(errors))
    }

    /// The longest statement the engine accepts, in bytes.
    pub fn max_statement_bytes(&self) -> usize {
        self.shared.options.max_statement_bytes
    }

    /// The most bytes one write may write (and a bulk ingestion send).
    pub fn max_write_bytes(&self) -> usize {
        self.shared.options.max_write_bytes
    }

    /// What `role` may see of each table it has a grant on (of `table` only,
    /// when given), under the policy served now.
    pub fn access(&self, role: &str, table: Option<&TableName>) -> Result<Vec<EffectiveAccess>> {
        self.snapshot().access(role, table)
    }

    /// What the engine serves, in counts (for `lakegate catalog check`).
    pub fn summary(&self) -> CatalogSummary {
        let lake = self.lake();
        let catalog = lake.catalog();
        CatalogSummary {
            name: catalog.name.clone(),
            databases: catalog.databases.len(),
            tables: catalog.tables.len(),
            roles: catalog.policy.roles().count(),
            users: catalog.policy.users().count(),
            grants: catalog.policy.grants().count(),
            tags: catalog.policy.tag_definitions().len(),
            tag_masks: catalog.policy.tag_masks().count(),
            tag_row_filters: catalog.policy.tag_row_filters().count(),
        }
    }

    /// The requests made so far to the storage location `name`.
    pub fn storage_requests(&self, name: &str) -> Option<RequestTotals> {
        let lake = self.lake();
        let location = lake.catalog().storage.get(name)?;
        Some(location.requests.totals())
    }

    /// The name of the catalog the engine serves (what Flight SQL clients
    /// see as the catalog).
    pub fn catalog_name(&self) -> String {
        self.lake().catalog().name.clone()
    }

    /// Whether `password` is `user`'s (Argon2). Unknown users and wrong
    /// passwords are indistinguishable, in answer and in time.
    pub fn verify_password(&self, user: &str, password: &str) -> bool {
        self.lake().catalog().verify_password(user, password)
    }

    /// The role `user` runs under when it asks for none, if it has one.
    pub fn default_role(&self, user: &str) -> Option<String> {
        self.default_role_of(&Principal::local(user))
    }

    /// The role `principal` runs under when it asks for none, if it has one.
    pub fn default_role_of(&self, principal: &Principal) -> Option<String> {
        self.lake().catalog().policy.default_role_of(principal)
    }

    /// Opens a session for the catalog user `user` (already authenticated
    /// by the caller) under `role`, or the user's default role.
    pub fn session(&self, user: &str, role: Option<&str>) -> Result<QuerySession> {
        self.session_for(&Principal::local(user), role)
    }

    /// Opens a session for `principal` (already authenticated by the
    /// caller, with the groups its sign-in vouched for) under `role`, or its
    /// default role.
    pub fn session_for(&self, principal: &Principal, role: Option<&str>) -> Result<QuerySession> {
        let lake = self.lake();
        let runtime = lake
            .catalog()
            .policy
            .runtime_role(principal, role)
            .map_err(|e| match e {
                RoleError::UnknownUser { user } => {
                    EngineError::PermissionDenied(format!("unknown user '{user}'"))
                }
                other => EngineError::PermissionDenied(other.to_string()),
            })?;
        Ok(QuerySession::new(
            Arc::clone(&lake),
            runtime,
            self.max_statement_bytes(),
        ))
    }

    /// The scalar functions SQL may call, by documentation section (such as
    /// "Math Functions", "String Functions"), each list sorted. For clients
    /// that ask which functions exist (Flight SQL GetSqlInfo).
    pub fn scalar_functions_by_section(&self) -> BTreeMap<String, Vec<String>> {
        let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, function) in self.lake().user_template().scalar_functions() {
            let section = function
                .documentation()
                .map(|doc| doc.doc_section.label.to_string())
                .unwrap_or_else(|| "Other Functions".to_string());
            sections.entry(section).or_default().push(name.clone());
        }
        for names in sections.values_mut() {
            names.sort();
        }
        sections
    }
}
