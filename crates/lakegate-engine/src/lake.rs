//! `Lake`: what every session of an engine shares, read-only once built: the
//! catalog, the stored tables, the session templates and the plan caches.
//!
//! The engine builds it (`engine.rs`); sessions, secured catalogs and the
//! catalog checks read it through its methods. It depends on none of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::LogicalPlan;
use lakegate_catalog::Catalog;
use lakegate_policy::{EffectiveAccess, TableName, WriteAccess};

use crate::cache::BoundedCache;
use crate::functions::session_functions;
use crate::policy_projection::policy_columns;
use crate::secured_table::{ScanPlanner, SecuredTable};
use crate::write::TableWrites;

/// What a query's logical plan depends on in an engine: who plans it, where,
/// and the text (see `Planner::plan_sql`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StatementKey {
    pub(crate) user: String,
    pub(crate) role: String,
    pub(crate) database: Option<String>,
    pub(crate) sql: String,
}

/// The engine's caches of query plans, shared by its sessions, by
/// [`StatementKey`]. They hold secured tables, so they are valid exactly as
/// long as those are: for the engine's lifetime.
#[derive(Debug)]
pub(crate) struct StatementPlans {
    /// Logical plans, as planned from the text.
    pub(crate) logical: BoundedCache<StatementKey, LogicalPlan>,
    /// Optimized plans of queries that do not read the clock.
    pub(crate) optimized: BoundedCache<StatementKey, LogicalPlan>,
    /// The schemas of their results, as the analyzer types them (a query
    /// the role may not read is refused each time, never kept).
    pub(crate) schemas: BoundedCache<StatementKey, SchemaRef>,
}

impl StatementPlans {
    /// Empty caches of at most `limit` plans each.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            logical: BoundedCache::new(limit),
            optimized: BoundedCache::new(limit),
            schemas: BoundedCache::new(limit),
        }
    }
}

/// The key of a secured table: the user (policies may call
/// `current_user()`), the role and the table.
pub(crate) type SecuredTableKey = (String, String, TableName);

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Lake {
    catalog: Catalog,
    /// The policy version the catalog is (0 for a declarative catalog).
    version: i64,
    /// The stored tables, unsecured. Only policy plans and the secured
    /// catalog's unrestricted tables reach them.
    raw_tables: BTreeMap<TableName, Arc<dyn TableProvider>>,
    /// Each stored table's policy columns (columns, and nested fields by
    /// dotted path), the names its access is resolved for: derived once.
    policy_columns: BTreeMap<TableName, Vec<String>>,
    /// A session state with functions and settings but no catalog, cloned for
    /// each user session.
    user_template: SessionState,
    /// A session state whose catalog holds the raw tables: where policies'
    /// SQL is planned (their subqueries read with the policy's rights).
    policy_template: SessionState,
    /// Physical planning of secured tables' scans.
    scan_planner: Arc<ScanPlanner>,
    /// Secured tables, shared by all sessions: a policy plan depends on
    /// nothing else, and the catalog of an engine never changes.
    secured_tables: BoundedCache<SecuredTableKey, Arc<SecuredTable>>,
    /// Queries' plans (see `Planner::plan_sql`); none when their reuse is off.
    statement_plans: Option<StatementPlans>,
    /// Where `system.audit` reads from.
    audit_dir: Option<PathBuf>,
    /// The memory limit of one query, if any.
    query_memory: Option<usize>,
    /// Whether results keep Arrow's view types (`Utf8View`, `BinaryView`)
    /// instead of the classic ones.
    view_types: bool,
    /// The most bytes one write may write.
    max_write_bytes: usize,
    /// Whether queries' joins are ordered by estimate (secured tables then
    /// read their statistics).
    reorder_joins: bool,
}

/// The parts a lake is built from (see `Engine::new`).
pub(crate) struct LakeParts {
    pub(crate) catalog: Catalog,
    pub(crate) version: i64,
    pub(crate) raw_tables: BTreeMap<TableName, Arc<dyn TableProvider>>,
    pub(crate) user_template: SessionState,
    pub(crate) policy_template: SessionState,
    pub(crate) scan_planner: ScanPlanner,
    pub(crate) statement_plans: Option<StatementPlans>,
    pub(crate) audit_dir: Option<PathBuf>,
    pub(crate) query_memory: Option<usize>,
    pub(crate) view_types: bool,
    pub(crate) max_write_bytes: usize,
    pub(crate) reorder_joins: bool,
}

/// How many secured tables the engine keeps before starting over.
const SECURED_TABLE_CACHE_LIMIT: usize = 10_000;

impl Lake {
    pub(crate) fn new(parts: LakeParts) -> Self {
        let policy_columns = parts
            .raw_tables
            .iter()
            .map(|(name, raw)| (name.clone(), policy_columns(&raw.schema())))
            .collect();
        Self {
            catalog: parts.catalog,
            version: parts.version,
            raw_tables: parts.raw_tables,
            policy_columns,
            user_template: parts.user_template,
            policy_template: parts.policy_template,
            scan_planner: Arc::new(parts.scan_planner),
            secured_tables: BoundedCache::new(SECURED_TABLE_CACHE_LIMIT),
            statement_plans: parts.statement_plans,
            audit_dir: parts.audit_dir,
            query_memory: parts.query_memory,
            view_types: parts.view_types,
            max_write_bytes: parts.max_write_bytes,
            reorder_joins: parts.reorder_joins,
        }
    }

    /// The catalog served.
    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The policy version served.
    pub(crate) fn version(&self) -> i64 {
        self.version
    }

    /// The stored table `name`, unsecured.
    pub(crate) fn raw_table(&self, name: &TableName) -> Option<&Arc<dyn TableProvider>> {
        self.raw_tables.get(name)
    }

    /// The policy columns of the stored table `name` (columns, and nested
    /// fields by dotted path).
    pub(crate) fn policy_columns(&self, name: &TableName) -> Option<&[String]> {
        self.policy_columns.get(name).map(Vec::as_slice)
    }

    /// What `role` may see of the stored table `name`: the one decision
    /// behind queries, metadata and `lakegate access`. `None`: nothing (not
    /// even its description), or no such table.
    pub(crate) fn access_of(&self, role: &str, name: &TableName) -> Option<EffectiveAccess> {
        let columns = self.policy_columns(name)?;
        self.catalog.policy.effective_access(role, name, columns)
    }

    /// What `role` may append to the stored table `name`. `None`: nothing,
    /// or no such table.
    pub(crate) fn write_access_of(&self, role: &str, name: &TableName) -> Option<WriteAccess> {
        let columns = self.policy_columns(name)?;
        self.catalog.policy.write_access(role, name, columns)
    }

    /// Whether `role` may describe the stored table `name`: the decision of
    /// [`Lake::access_of`], answered without resolving columns when the
    /// role's grants alone decide it.
    pub(crate) fn may_describe(&self, role: &str, name: &TableName) -> bool {
        let Some(columns) = self.policy_columns(name) else {
            return false;
        };
        self.catalog.policy.may_describe(role, name, columns)
    }

    /// The names of the stored tables, sorted.
    pub(crate) fn table_names(&self) -> impl Iterator<Item = &TableName> {
        self.raw_tables.keys()
    }

    /// The most bytes one write may write.
    pub(crate) fn max_write_bytes(&self) -> usize {
        self.max_write_bytes
    }

    /// The writes committed per table (shared by every policy version).
    pub(crate) fn table_writes(&self) -> &TableWrites {
        &self.scan_planner.table_writes
    }

    /// The template of every user session.
    pub(crate) fn user_template(&self) -> &SessionState {
        &self.user_template
    }

    /// The physical planner of secured tables' scans.
    pub(crate) fn scan_planner(&self) -> &Arc<ScanPlanner> {
        &self.scan_planner
    }

    /// The secured tables built so far.
    pub(crate) fn secured_tables(&self) -> &BoundedCache<SecuredTableKey, Arc<SecuredTable>> {
        &self.secured_tables
    }

    /// The kept statement plans, when plans are reused.
    pub(crate) fn statement_plans(&self) -> Option<&StatementPlans> {
        self.statement_plans.as_ref()
    }

    /// The audit log's directory, when the engine has one.
    pub(crate) fn audit_dir(&self) -> Option<&Path> {
        self.audit_dir.as_deref()
    }

    /// Whether results keep Arrow's view types.
    pub(crate) fn view_types(&self) -> bool {
        self.view_types
    }

    /// Whether queries' joins are ordered by estimate.
    pub(crate) fn reorder_joins(&self) -> bool {
        self.reorder_joins
    }

    /// The policy context for `user` under `role`: the raw tables, and
    /// `current_user()` / `current_role()` bound to them. Policies are planned
    /// here, for serving and for catalog checks alike.
    pub(crate) fn policy_state(&self, user: &str, role: &str) -> SessionState {
        let mut state = self.policy_template.clone();
        for function in session_functions(user, role) {
            state
                .register_udf(function)
                .expect("registering a function cannot fail");
        }
        state
    }

    /// The runtime a query executes in: the engine's (object stores, caches,
    /// spill directory) with a memory pool of its own when queries are
    /// limited.
    pub(crate) fn query_runtime(&self) -> Arc<RuntimeEnv> {
        let shared = self.user_template.runtime_env();
        match self.query_memory {
            None => Arc::clone(shared),
            Some(limit) => RuntimeEnvBuilder::from_runtime_env(shared)
                .with_memory_pool(Arc::new(FairSpillPool::new(limit)))
                .build_arc()
                .expect("a runtime from an existing one builds"),
        }
    }
}
