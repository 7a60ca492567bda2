//! `SecuredTable`: what a table name resolves to inside a role's session.
//!
//! Its schema is the role's view of the table (hidden columns are absent,
//! masked columns carry `lakegate.mask` metadata). Its scan plans the *policy
//! plan* and puts it under a [`PolicyBarrierExec`]:
//!
//! ```text
//!   user's query ...
//!        │
//!   PolicyBarrierExec            ◀── nothing from above passes below but
//!        │                            dynamic filters over raw columns
//!   [LIMIT n]                     (a limit DataFusion handed to the scan)
//!   Projection: requested columns
//!   [Filter: leakproof user predicates]
//!   Projection: masks and cell rules, over stored columns (one projection)
//!   Filter: row filter (union of grants), over stored columns
//!   TableScan: raw Parquet
//! ```
//!
//! A role that sees a table unrestricted (every column raw, every row) skips
//! all of it and scans the raw table directly, so admins pay nothing.
//!
//! Planning the policy plan for a scan is most of what enforcement costs at
//! planning time, so it is kept per scan shape: the optimized plan for the
//! table's lifetime, its physical plan for the file listing TTL. Every scan
//! gets a copy of the physical plan with fresh execution state.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Column, DataFusionError, Result, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::ListingTable;
use datafusion::execution::SessionState;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use lakegate_policy::EffectiveAccess;

use crate::barrier::{PolicyBarrierExec, statistics_past_policy};
use crate::cache::BoundedCache;
use crate::error::{barrier_error, permission_error, policy_error};
use crate::leakproof::is_leakproof;
use crate::policy_projection::{plan_policy_sql, raw_columns};
use crate::write::TableWrites;

/// Field metadata key naming the mask applied to a column.
pub const MASK_METADATA_KEY: &str = "lakegate.mask";

/// A table as one role may see it.
#[derive(Debug)]
pub struct SecuredTable {
    access: EffectiveAccess,
    schema: SchemaRef,
    plan: SecuredPlan,
    /// Scan plans by scan shape (projection, pushed filters, limit): a
    /// repeated scan only copies one. The policy they were built from is
    /// immutable in an engine; the files they list are not, so a physical
    /// plan is reused for the engine's file listing TTL only, then planned
    /// again from the kept optimized plan.
    scan_plans: BoundedCache<ScanShape, CachedScan>,
    /// The stored table its statistics are read from (its files, never
    /// the table cache, which a scan would start loading), when known.
    statistics_source: Option<Arc<dyn TableProvider>>,
    /// What the table tells the logical optimizer (join ordering), gathered
    /// before a query reading it is optimized ([`gather_statistics`]).
    statistics: tokio::sync::OnceCell<Option<Statistics>>,
}

/// A scan's plan, kept for the scans of the same shape that follow.
#[derive(Debug, Clone)]
struct CachedScan {
    /// The policy plan narrowed to the scan and optimized.
    optimized: LogicalPlan,
    /// `optimized`, physically planned (before the physical
    /// optimizer). Never executed as is: each scan gets a copy with fresh
    /// execution state.
    physical: Arc<dyn ExecutionPlan>,
    planned_at: Instant,
    /// The table's committed writes when it was planned.
    writes_seen: u64,
    /// Whether the scan is estimated large enough for dynamic filters to
    /// pass its barrier ([`ScanPlanner::dynamic_filter_min_rows`]).
    takes_dynamic_filters: bool,
    /// `physical`'s statistics, when it has them: the barrier's estimate.
    statistics: Option<Arc<Statistics>>,
}

/// Physical planning of policy plans, shared by an engine's secured tables.
#[derive(Debug)]
pub(crate) struct ScanPlanner {
    /// A policy context without physical optimizer rules: a scan's subplan
    /// ends up beneath the user's plan, which the optimizer then processes
    /// whole (barriers included). Optimizing it here too did the same work
    /// twice on every scan.
    pub(crate) state: SessionState,
    /// How long a scan plan (and so the file list it holds) is reused: the
    /// engine's file listing TTL, or zero.
    pub(crate) reuse_for: Duration,
    /// Writes committed per table: a scan plan is not reused across one.
    pub(crate) table_writes: Arc<TableWrites>,
    /// The fewest rows a scan must be estimated to return for dynamic
    /// filters to pass its barrier (`EngineOptions::dynamic_filter_min_rows`).
    pub(crate) dynamic_filter_min_rows: usize,
}

/// What a scan asks of a secured table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScanShape {
    projection: Option<Vec<usize>>,
    /// The pushed filters' display (Expr has no Hash).
    filters: String,
    limit: Option<usize>,
}

/// The most conjuncts of a query's predicate one scan is given: the scan
/// joins them into one predicate leaning left, which every walk over it
/// (Parquet pruning among them) recurses down level by level. A query
/// filtering on more (`c <> 1 AND c <> 2 AND ...`, 100,000 terms) applies the
/// rest above the scan, where the predicate stays balanced.
const MAX_PUSHED_FILTERS: usize = 64;

/// How many scan shapes a table keeps before starting over.
const SCAN_PLAN_CACHE_LIMIT: usize = 256;

#[derive(Debug)]
enum SecuredPlan {
    /// The role sees the stored table as it is.
    Unrestricted(Arc<dyn TableProvider>),
    /// The role's policy plan, over every visible column.
    Restricted {
        policy_plan: LogicalPlan,
        scan_planner: Arc<ScanPlanner>,
        /// Visible columns shown raw in every visible row: the only ones a
        /// pushed-down user predicate or dynamic filter may read.
        raw_columns: Arc<BTreeSet<String>>,
        /// Whether the policy reads the query's clock (`now()`,
        /// `current_date()`, ...): optimizing folds it into a constant of
        /// that query, so its scan plans are never reused.
        reads_clock: bool,
    },
}

/// DataFusion's functions whose value is the query's start time, folded into
/// a constant when the plan is optimized.
const CLOCK_FUNCTIONS: [&str; 3] = ["now", "current_date", "current_time"];

/// Whether `plan` (its subqueries included) calls a clock function.
pub(crate) fn reads_clock(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = false;
    let calls_clock = |expr: &Expr| {
        expr.exists(|e| {
            Ok(matches!(e, Expr::ScalarFunction(f) if CLOCK_FUNCTIONS.contains(&f.name())))
        })
    };
    plan.apply_with_subqueries(|node| {
        found = node
            .expressions()
            .iter()
            .any(|e| calls_clock(e).unwrap_or(true));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .expect("visiting a plan cannot fail");
    found
}

impl SecuredTable {
    /// A table the role sees unrestricted: the raw provider, unchanged.
    pub fn unrestricted(access: EffectiveAccess, raw: Arc<dyn TableProvider>) -> Self {
        Self {
            access,
            schema: raw.schema(),
            plan: SecuredPlan::Unrestricted(raw),
            scan_plans: BoundedCache::new(SCAN_PLAN_CACHE_LIMIT),
            statistics_source: None,
            statistics: tokio::sync::OnceCell::new(),
        }
    }

    /// A table behind the role's policy. `policy_plan` must come from
    /// [`policy_sql`] planned in the policy context, then [`finish_policy_plan`].
    pub(crate) fn restricted(
        access: EffectiveAccess,
        stored: &SchemaRef,
        policy_plan: LogicalPlan,
        scan_planner: Arc<ScanPlanner>,
    ) -> Self {
        let schema = Arc::new(policy_plan.schema().as_arrow().clone());
        let raw_columns = Arc::new(raw_columns(&access, stored).into_iter().collect());
        let reads_clock = reads_clock(&policy_plan);
        Self {
            access,
            schema,
            plan: SecuredPlan::Restricted {
                policy_plan,
                scan_planner,
                raw_columns,
                reads_clock,
            },
            scan_plans: BoundedCache::new(SCAN_PLAN_CACHE_LIMIT),
            statistics_source: None,
            statistics: tokio::sync::OnceCell::new(),
        }
    }

    /// The table, its statistics to be read from `stored` (the stored
    /// table's files) when a query reading it is planned.
    pub(crate) fn with_statistics_source(mut self, stored: Arc<dyn TableProvider>) -> Self {
        self.statistics_source = Some(stored);
        self
    }

    /// Reads the stored table's statistics once (the file listing and the
    /// Parquet footers, both cached, which the query's scan reads next).
    async fn gather_statistics(&self, state: &dyn Session) {
        let Some(source) = &self.statistics_source else {
            return;
        };
        self.statistics
            .get_or_init(|| async {
                let stored = stored_statistics(source, state).await?;
                Some(self.visible_statistics(&stored))
            })
            .await;
    }

    /// What the role may be told of the stored table's statistics: all of
    /// them when it sees the table unrestricted; otherwise what crosses a
    /// policy barrier ([`statistics_past_policy`]).
    fn visible_statistics(&self, stored: &Statistics) -> Statistics {
        match &self.plan {
            SecuredPlan::Unrestricted(_) => stored.clone().to_inexact(),
            SecuredPlan::Restricted { .. } => statistics_past_policy(&self.schema, stored),
        }
    }

    /// The effective access this table enforces.
    pub fn access(&self) -> &EffectiveAccess {
        &self.access
    }

    /// Whether the role's policy hides some of the table's rows.
    pub(crate) fn filters_rows(&self) -> bool {
        self.access.filters_rows()
    }

    /// The policy plan narrowed to one scan: the pushed (leakproof)
    /// predicates, the requested columns and the limit, in that order above
    /// the policy's own filter and masks.
    fn policy_plan_for(
        &self,
        policy_plan: &LogicalPlan,
        pushed: &[Expr],
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<LogicalPlan> {
        let mut builder = LogicalPlanBuilder::from(policy_plan.clone());
        if let Some(predicate) = conjunction(pushed.iter().cloned()) {
            builder = builder.filter(predicate)?;
        }
        if let Some(indices) = projection {
            let columns: Vec<Expr> = indices
                .iter()
                .map(|i| Expr::Column(Column::new_unqualified(self.schema.field(*i).name())))
                .collect();
            builder = builder.project(columns)?;
        }
        if let Some(fetch) = limit {
            builder = builder.limit(0, Some(fetch))?;
        }
        builder.build()
    }

    pub(crate) fn deny_unless_select(&self) -> Result<()> {
        if self.access.can_select {
            Ok(())
        } else {
            Err(permission_error(format!(
                "role '{}' may describe table '{}' but not read its rows",
                self.access.role, self.access.table
            )))
        }
    }
}

#[async_trait]
impl TableProvider for SecuredTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn statistics(&self) -> Option<Statistics> {
        self.statistics.get().cloned().flatten()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let (offered, kept_above) = filters.split_at(filters.len().min(MAX_PUSHED_FILTERS));
        let mut answers = match &self.plan {
            SecuredPlan::Unrestricted(raw) => raw.supports_filters_pushdown(offered)?,
            // Exact: the scan applies each such filter to every row, in a
            // filter over the policy plan (`policy_plan_for`), beneath the
            // barrier; another copy above it would be one more operator for
            // every optimizer pass to rebuild and every row to go through.
            SecuredPlan::Restricted { raw_columns, .. } => offered
                .iter()
                .map(|f| {
                    if is_leakproof(f, raw_columns) {
                        TableProviderFilterPushDown::Exact
                    } else {
                        TableProviderFilterPushDown::Unsupported
                    }
                })
                .collect(),
        };
        answers.extend(
            kept_above
                .iter()
                .map(|_| TableProviderFilterPushDown::Unsupported),
        );
        Ok(answers)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.deny_unless_select()?;
        let (policy_plan, scan_planner, raw_columns, reads_clock) = match &self.plan {
            SecuredPlan::Unrestricted(raw) => {
                return raw.scan(state, projection, filters, limit).await;
            }
            SecuredPlan::Restricted {
                policy_plan,
                scan_planner,
                raw_columns,
                reads_clock,
            } => (policy_plan, scan_planner, raw_columns, *reads_clock),
        };
        let table = &self.access.table;
        // Only predicates we declared leakproof may come here; check again
        // rather than trust the caller. The scan answers for each filter it
        // is given (they were declared exact), so another is refused, not
        // dropped.
        if filters.iter().any(|f| !is_leakproof(f, raw_columns)) {
            return Err(DataFusionError::Internal(format!(
                "a scan of '{table}' was given a filter it did not accept"
            )));
        }
        let pushed: Arc<[Expr]> = filters.iter().map(|f| unqualify(f.clone())).collect();
        let shape = ScanShape {
            projection: projection.cloned(),
            filters: format!("{pushed:?}"),
            limit,
        };
        // Optimized with the user's session, whose clock started with the
        // query: a policy reading it is planned again for every query.
        let writes_seen = scan_planner.table_writes.count(table);
        let kept = if reads_clock {
            None
        } else {
            self.scan_plans.get(&shape)
        };
        let cached = match kept {
            Some(cached)
                if cached.planned_at.elapsed() < scan_planner.reuse_for
                    && cached.writes_seen == writes_seen =>
            {
                cached
            }
            expired => {
                // The optimized policy plan lists no files: it outlives the TTL.
                let optimized = match expired {
                    Some(expired) => expired.optimized,
                    None => {
                        let plan = self
                            .policy_plan_for(policy_plan, &pushed, projection, limit)
                            .map_err(|e| policy_error(table, &e))?;
                        state.optimize(&plan).map_err(|e| policy_error(table, &e))?
                    }
                };
                // Already optimized: physical planning only, and no physical
                // optimizer (it runs once over the user's whole plan).
                let physical = scan_planner
                    .state
                    .query_planner()
                    .create_physical_plan(&optimized, &scan_planner.state)
                    .await
                    // Listing the files can fail at the storage location.
                    .map_err(|e| barrier_error(table, e))?;
                let statistics = StatisticsContext::new()
                    .compute(physical.as_ref(), &StatisticsArgs::new())
                    .ok();
                let takes_dynamic_filters = statistics
                    .as_ref()
                    .and_then(|statistics| statistics.num_rows.get_value().copied())
                    .is_none_or(|rows| rows >= scan_planner.dynamic_filter_min_rows);
                let cached = CachedScan {
                    optimized,
                    physical,
                    planned_at: Instant::now(),
                    writes_seen,
                    takes_dynamic_filters,
                    statistics,
                };
                if !reads_clock {
                    self.scan_plans.insert(shape, cached.clone());
                }
                cached
            }
        };
        // A copy with its own execution state (file queues, join tables):
        // plans of concurrent queries share nothing that runs.
        let physical = reset_plan_states(cached.physical).map_err(|e| policy_error(table, &e))?;
        // A barrier that lets no column through takes no dynamic filter.
        let passing = if cached.takes_dynamic_filters {
            Arc::clone(raw_columns)
        } else {
            Arc::default()
        };
        let barrier =
            PolicyBarrierExec::new(table.clone(), self.access.role.clone(), passing, physical)
                .with_user_filters(pushed);
        Ok(Arc::new(match &cached.statistics {
            Some(statistics) => barrier.with_estimate(statistics),
            None => barrier,
        }))
    }
}

/// The most files a table may have for its statistics to be read before a
/// query: that reads every file's footer (once; they are cached), where the
/// query itself may read only a few partitions' files. A larger table has
/// no statistics, and joins with it keep their written order.
const MAX_STATISTICS_FILES: usize = 256;

/// The statistics a scan of all of `source` reports, unless it is a file
/// table of more than [`MAX_STATISTICS_FILES`] files (or cannot be listed).
async fn stored_statistics(
    source: &Arc<dyn TableProvider>,
    state: &dyn Session,
) -> Option<Statistics> {
    if let Some(files) = source.downcast_ref::<ListingTable>() {
        let counted = count_files(files, state, MAX_STATISTICS_FILES + 1).await?;
        if counted > MAX_STATISTICS_FILES {
            return None;
        }
    }
    let scan = source.scan(state, None, &[], None).await.ok()?;
    let statistics = StatisticsContext::new()
        .compute(scan.as_ref(), &StatisticsArgs::new())
        .ok()?;
    Some(Statistics::clone(&statistics))
}

/// How many files `table` lists, counting up to `up_to` (through the
/// engine's file listing cache, which the query's scan lists next).
async fn count_files(table: &ListingTable, state: &dyn Session, up_to: usize) -> Option<usize> {
    use futures::StreamExt;
    let mut counted = 0;
    for path in table.table_paths() {
        let store = state.runtime_env().object_store(path).ok()?;
        let extension = &table.options().file_extension;
        let mut files = path
            .list_all_files(state, store.as_ref(), extension)
            .await
            .ok()?;
        while let Some(file) = files.next().await {
            file.ok()?;
            counted += 1;
            if counted >= up_to {
                return Some(counted);
            }
        }
    }
    Some(counted)
}

/// Gathers the statistics of every secured table `plan` reads (subqueries
/// included), so that the optimizer can order its joins
/// (`ReorderJoinsByEstimate`). Each table reads them once.
pub(crate) async fn gather_statistics(plan: &LogicalPlan, state: &dyn Session) {
    use datafusion::catalog::default_table_source::source_as_provider;
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut tables: Vec<Arc<dyn TableProvider>> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && provider.is::<SecuredTable>()
        {
            tables.push(provider);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("visiting a plan cannot fail");
    let gathering = tables
        .iter()
        .filter_map(|t| t.downcast_ref::<SecuredTable>())
        .map(|t| t.gather_statistics(state));
    futures::future::join_all(gathering).await;
}

/// Drops table qualifiers: pushed filters are qualified with the name the user
/// gave the table, the policy plan's columns with none.
fn unqualify(expr: Expr) -> Expr {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
    .expect("renaming columns cannot fail")
}

/// Plans the policy of `access` over the stored table (whose schema is
/// `stored`) in a policy context `state`: raw tables, and session functions
/// bound to the session's user and role. Serving and catalog validation both
/// come through here, so what validation accepts is what serves.
pub(crate) async fn plan_policy(
    state: &SessionState,
    access: &EffectiveAccess,
    stored: &SchemaRef,
) -> Result<LogicalPlan> {
    let mut state = state.clone();
    // Unqualified names in a policy's subqueries resolve in the database of
    // the table the policy protects.
    state.config_mut().options_mut().catalog.default_schema = access.table.database.clone();
    plan_policy_sql(&state, access, stored).await
}
