//! `QuerySession`: SQL run under one user and runtime role.
//!
//! ```text
//! SQL text ─▶ parse (one statement) ─▶ gate ─▶ table check ─▶ DataFusion plan ─▶ stream
//!                                         │          │
//!                                         │          └─ a table the role may not describe:
//!                                         │             "does not exist or role may not read it"
//!                                         └─ USE, SHOW DATABASES, EXPLAIN (non-admin) answered here
//! ```

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ResolvedTableReference, TableReference};
use datafusion::datasource::source_as_provider;
use datafusion::execution::TaskContext;
use datafusion::execution::{SendableRecordBatchStream, SessionState};
use datafusion::logical_expr::{LogicalPlan, ScalarUDF};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, execute_stream};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::TryStreamExt;
use lakegate_audit::TableRead;
use lakegate_policy::{RuntimeRole, TableName};

use crate::cache::BoundedCache;
use crate::secured_table::{SecuredTable, reads_clock};

use crate::engine::{EngineInner, NO_DATABASE};
use crate::error::{EngineError, Result, SqlPosition};
use crate::explain::{explain_batch, explain_schema};
use crate::functions::session_functions;
use crate::gate::{Admitted, SessionStatement, admit};
use crate::parameters::{PreparedShape, parameter_schema, parameter_values};
use crate::secured_catalog::{SecuredCatalogList, SecuredResolver};
use crate::sql_text::{accept_session_function_parens, number_question_marks};
use crate::system_tables::{AUDIT_TABLE, SYSTEM_DATABASE};

/// The result of a statement: its schema and a stream of batches. Errors in
/// the stream are DataFusion's; turn them into [`EngineError`] with
/// [`EngineError::from_execution`] (or use [`QueryOutput::collect`]).
pub struct QueryOutput {
    /// The result's schema (masked columns carry `lakegate.mask` metadata).
    pub schema: SchemaRef,
    /// The result rows.
    pub stream: SendableRecordBatchStream,
    /// What the statement reads: each table with the columns read and the
    /// grants whose policy applied (for the audit log).
    pub reads: Vec<TableRead>,
}

impl std::fmt::Debug for QueryOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryOutput")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl QueryOutput {
    /// Reads the whole result.
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        self.stream
            .try_collect()
            .await
            .map_err(EngineError::from_execution)
    }

    fn from_batch(batch: RecordBatch) -> Self {
        let schema = batch.schema();
        let stream = MemoryStream::try_new(vec![batch], Arc::clone(&schema), None)
            .expect("a memory stream over one batch");
        Self {
            schema,
            stream: Box::pin(stream),
            reads: Vec::new(),
        }
    }
}

/// A query planned in parts (see [`QuerySession::plan_parts`]).
pub struct PartitionedQuery {
    physical: Arc<dyn ExecutionPlan>,
    reads: Vec<TableRead>,
    task_ctx: Arc<TaskContext>,
    parts: usize,
}

impl std::fmt::Debug for PartitionedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionedQuery")
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

impl PartitionedQuery {
    /// How many independent parts the result has (at least 1).
    pub fn parts(&self) -> usize {
        self.parts
    }

    /// The result's schema.
    pub fn schema(&self) -> SchemaRef {
        self.physical.schema()
    }

    /// Starts reading part `part` (of [`PartitionedQuery::parts`]); the parts
    /// together are the whole result, each row in exactly one.
    pub fn execute(&self, part: usize) -> Result<QueryOutput> {
        if part >= self.parts {
            return Err(EngineError::InvalidSql {
                message: format!("no part {part}: the query has {} part(s)", self.parts),
                position: None,
            });
        }
        let physical = Arc::clone(&self.physical);
        let context = Arc::clone(&self.task_ctx);
        let stream = if self.parts == 1 {
            execute_stream(physical, context)
        } else {
            physical.execute(part, context)
        }
        .map_err(EngineError::from_execution)?;
        Ok(QueryOutput {
            schema: self.physical.schema(),
            stream,
            reads: self.reads.clone(),
        })
    }
}

/// The number of output partitions of `plan` when each can be computed
/// without the others: every operator maps input partition i to output
/// partition i (same count as each child) and none redistributes rows.
fn independent_parts(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    let parts = plan.output_partitioning().partition_count();
    if plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortPreservingMergeExec>()
    {
        return None;
    }
    for child in plan.children() {
        if child.output_partitioning().partition_count() != parts {
            return None;
        }
        independent_parts(child)?;
    }
    Some(parts)
}

/// The most rows a query may fetch and still be planned on one partition by
/// [`reads_first_rows_only`]: a few batches' worth.
const ONE_PARTITION_FETCH: usize = 10_000;

/// Whether `plan` only reads the first rows of one table: limits and
/// projections over a single scan that the limit was pushed into (at most
/// [`ONE_PARTITION_FETCH`] rows), with no filter, the query's or the role's,
/// that could make the scan read far to find them. Such a query is planned
/// on one partition: each partition would decode a page of its own for the
/// same few rows, and then a merge would drop all but one partition's.
fn reads_first_rows_only(plan: &LogicalPlan) -> bool {
    match plan {
        // An administrator's EXPLAIN shows the plan the query would run.
        LogicalPlan::Explain(explain) => reads_first_rows_only(&explain.plan),
        LogicalPlan::Analyze(analyze) => reads_first_rows_only(&analyze.input),
        LogicalPlan::Limit(_) | LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => {
            matches!(plan.inputs().as_slice(), [input] if reads_first_rows_only(input))
        }
        LogicalPlan::TableScan(scan) => {
            let few_rows = scan.fetch.is_some_and(|rows| rows <= ONE_PARTITION_FETCH);
            let every_row = source_as_provider(&scan.source).is_ok_and(|provider| {
                provider
                    .downcast_ref::<SecuredTable>()
                    .is_some_and(|table| !table.filters_rows())
            });
            few_rows && scan.filters.is_empty() && every_row
        }
        _ => false,
    }
}

/// A session: one user, one runtime role, a current database.
pub struct QuerySession {
    engine: Arc<EngineInner>,
    resolver: Arc<SecuredResolver>,
    state: SessionState,
    current_database: Option<String>,
    /// Whether this session registered functions of its own: its plans may
    /// call them, so they are not shared through the statement cache.
    private_functions: bool,
}

/// What a query's logical plan depends on in an engine: who plans it, where,
/// and the text (see [`QuerySession::plan_sql`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StatementKey {
    user: String,
    role: String,
    database: Option<String>,
    sql: String,
}

/// The engine's caches of query plans, shared by its sessions, by
/// [`StatementKey`].
#[derive(Debug)]
pub(crate) struct StatementPlans {
    /// Logical plans, as planned from the text.
    logical: BoundedCache<StatementKey, LogicalPlan>,
    /// Optimized plans of queries that do not read the clock.
    optimized: BoundedCache<StatementKey, LogicalPlan>,
}

impl StatementPlans {
    /// Empty caches of at most `limit` plans each.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            logical: BoundedCache::new(limit),
            optimized: BoundedCache::new(limit),
        }
    }
}

/// A statement through the gate, planned when it is a query.
enum Planned {
    /// A query's logical plan (boxed: it is far larger than the others).
    Query(Box<QueryPlan>),
    /// Any other statement, which the session answers itself.
    Other(SessionStatement),
}

/// A query's logical plan, with the key of its statement's kept plans when it
/// is exactly the plan of a statement's text (as [`QuerySession::plan_sql`]
/// gives it). Only such a plan may be kept, or taken, under that key: a plan
/// with parameters bound, or an EXPLAIN's inner statement, carries none.
struct QueryPlan {
    logical: LogicalPlan,
    key: Option<StatementKey>,
}

impl QueryPlan {
    /// A plan that belongs to no statement's text.
    fn unkept(logical: LogicalPlan) -> Self {
        Self { logical, key: None }
    }

    /// This plan with `row` of `parameters` bound to its placeholders:
    /// another plan than its text's, so it loses the key.
    fn bind(self, parameters: &RecordBatch, row: usize) -> Result<Self> {
        let values = parameter_values(&self.logical, parameters, row)?;
        let logical = self
            .logical
            .with_param_values(values)
            .map_err(EngineError::from_planning)?;
        Ok(Self::unkept(logical))
    }
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession")
            .field("runtime", self.resolver.runtime())
            .field("current_database", &self.current_database)
            .finish_non_exhaustive()
    }
}

impl QuerySession {
    pub(crate) fn new(engine: Arc<EngineInner>, runtime: RuntimeRole) -> Self {
        let functions = session_functions(&runtime.user, &runtime.role);
        let resolver = Arc::new(SecuredResolver::new(Arc::clone(&engine), runtime));
        // A clone of the template, not a rebuild: a builder registers every
        // function again, which was most of the cost of opening a session.
        let mut state = engine.user_template.clone();
        state.register_catalog_list(Arc::new(SecuredCatalogList::new(Arc::clone(&resolver))));
        for f in functions {
            state
                .register_udf(f)
                .expect("registering a function cannot fail");
        }
        let current_database = engine.catalog.default_database.clone();
        Self {
            engine,
            resolver,
            state,
            current_database,
            private_functions: false,
        }
    }

    /// The authenticated user.
    pub fn user(&self) -> &str {
        &self.resolver.runtime().user
    }

    /// The runtime role.
    pub fn role(&self) -> &str {
        &self.resolver.runtime().role
    }

    /// The current database, if any.
    pub fn current_database(&self) -> Option<&str> {
        self.current_database.as_deref()
    }

    /// Whether the session's role administers the whole lake (sees full plans).
    pub fn is_lake_admin(&self) -> bool {
        self.engine.catalog.policy.is_lake_admin(self.role())
    }

    /// The databases the role may see (those holding a table it may describe).
    pub fn visible_databases(&self) -> Vec<String> {
        self.resolver.visible_databases()
    }

    /// The tables the role may describe, as `(database, table)`, sorted.
    pub fn visible_tables(&self) -> Vec<(String, String)> {
        let mut tables: Vec<(String, String)> = self
            .engine
            .catalog
            .databases
            .keys()
            .flat_map(|db| self.resolver.visible_tables(db))
            .map(|t| (t.database.clone(), t.table.clone()))
            .collect();
        if self.resolver.system_database().is_some() {
            tables.push((SYSTEM_DATABASE.to_string(), AUDIT_TABLE.to_string()));
        }
        tables.sort();
        tables
    }

    /// The columns of a table as the role sees them: visible columns only,
    /// masked columns with their masked type and `lakegate.mask` metadata.
    /// `None` when the role may not describe the table (or it does not exist).
    pub async fn table_schema(&self, database: &str, table: &str) -> Result<Option<SchemaRef>> {
        let name = TableName::new(database, table);
        if database == SYSTEM_DATABASE {
            let audit = self.resolver.may_describe(&name);
            return Ok(audit.then(lakegate_audit::audit_schema));
        }
        let secured = self
            .resolver
            .secured_table(&name)
            .await
            .map_err(EngineError::from_planning)?;
        Ok(secured.map(|t| datafusion::catalog::TableProvider::schema(t.as_ref())))
    }

    /// Makes `database` current, if the role may see it.
    pub fn use_database(&mut self, database: &str) -> Result<()> {
        if !self.resolver.may_see_database(database) {
            return Err(EngineError::PermissionDenied(format!(
                "database '{database}' does not exist or role '{}' may not use it",
                self.role()
            )));
        }
        self.current_database = Some(database.to_string());
        self.state.config_mut().options_mut().catalog.default_schema = database.to_string();
        Ok(())
    }

    /// Adds a scalar function to this session's SQL (for embedding
    /// applications and tests). Policies never see it.
    pub fn register_function(&mut self, function: ScalarUDF) {
        self.private_functions = true;
        self.state
            .register_udf(Arc::new(function))
            .expect("registering a function cannot fail");
    }

    /// Runs one statement.
    pub async fn execute(&mut self, sql: &str) -> Result<QueryOutput> {
        let statement = match self.plan_sql(sql).await? {
            Planned::Query(query) => return self.run_query(*query).await,
            Planned::Other(statement) => statement,
        };
        match statement {
            SessionStatement::ShowDatabases => Ok(QueryOutput::from_batch(self.databases_batch())),
            SessionStatement::Use(database) => {
                self.use_database(&database)?;
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "current_database",
                    DataType::Utf8,
                    false,
                )]));
                let batch =
                    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![database]))])
                        .map_err(|e| EngineError::Internal(e.to_string()))?;
                Ok(QueryOutput::from_batch(batch))
            }
            SessionStatement::Explain {
                statement,
                inner,
                analyze,
            } => {
                if self.is_lake_admin() {
                    let logical = self.logical_plan_of(*statement).await?;
                    return self.run_query(QueryPlan::unkept(logical)).await;
                }
                if analyze {
                    return Err(EngineError::PermissionDenied(
                        "EXPLAIN ANALYZE is available to lake administrators only".into(),
                    ));
                }
                let logical = self.logical_plan_of(*inner).await?;
                let optimized = self.optimize(&QueryPlan::unkept(logical))?;
                let physical = self.physical_plan_of(&optimized).await?;
                let batch = explain_batch(&optimized, physical)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                debug_assert_eq!(batch.schema(), explain_schema());
                Ok(QueryOutput::from_batch(batch))
            }
        }
    }

    /// The schema a statement's result would have, as the role sees it,
    /// without running it: queries are planned only (the policy applies, so
    /// a denied statement fails here). Other statements are answered as by
    /// [`QuerySession::execute`], which costs nothing for them.
    pub async fn output_schema(&mut self, sql: &str) -> Result<SchemaRef> {
        // The logical plan decides the schema (the physical plan must match
        // it); optimizing and physical planning wait for execution.
        match self.plan_sql(sql).await? {
            Planned::Query(query) => schema_if_readable(&query.logical),
            Planned::Other(_) => Ok(self.execute(sql).await?.schema),
        }
    }

    /// Prepares a statement: plans it under the role now (so a denied
    /// statement fails here) and says what it returns and which parameters
    /// it takes. Executing plans it again under the executing role (from the
    /// engine's statement cache when that is the same user and role).
    pub async fn prepare(&mut self, sql: &str) -> Result<PreparedShape> {
        match self.plan_sql(sql).await? {
            Planned::Query(query) => Ok(PreparedShape {
                dataset_schema: schema_if_readable(&query.logical)?,
                parameter_schema: parameter_schema(&query.logical)?,
            }),
            Planned::Other(_) => Ok(PreparedShape {
                dataset_schema: self.output_schema(sql).await?,
                parameter_schema: Arc::new(Schema::empty()),
            }),
        }
    }

    /// Runs a query with row `row` of `parameters` bound to its placeholders
    /// (positional `$1`, `$2` take the columns in order; named `$region`
    /// takes the column of that name).
    pub async fn execute_with_parameters(
        &mut self,
        sql: &str,
        parameters: &RecordBatch,
        row: usize,
    ) -> Result<QueryOutput> {
        let bound = self.bound_query_plan(sql, parameters, row).await?;
        self.run_query(bound).await
    }

    /// The schema of a query with row `row` of `parameters` bound, without
    /// running it.
    pub async fn output_schema_with_parameters(
        &mut self,
        sql: &str,
        parameters: &RecordBatch,
        row: usize,
    ) -> Result<SchemaRef> {
        let bound = self.bound_query_plan(sql, parameters, row).await?;
        schema_if_readable(&bound.logical)
    }

    async fn bound_query_plan(
        &self,
        sql: &str,
        parameters: &RecordBatch,
        row: usize,
    ) -> Result<QueryPlan> {
        let Planned::Query(query) = self.plan_sql(sql).await? else {
            return Err(EngineError::InvalidSql {
                message: "parameters can only be bound to queries".into(),
                position: None,
            });
        };
        query.bind(parameters, row)
    }

    /// The physical plan of a query, as it would run (for tests and tools that
    /// inspect plans: it shows what lies beneath policy barriers).
    pub async fn physical_plan(&mut self, sql: &str) -> Result<Arc<dyn ExecutionPlan>> {
        let Planned::Query(query) = self.plan_sql(sql).await? else {
            return Err(EngineError::InvalidSql {
                message: "only queries have a physical plan".into(),
                position: None,
            });
        };
        let (physical, _) = self.optimize_and_plan(&query).await?;
        Ok(physical)
    }

    /// Plans a query in parts that can be read independently (by parallel
    /// Flight endpoints, possibly on other servers). `None` for statements
    /// that are not queries. A plan whose output partitions depend on one
    /// another (a repartition, a merge, a join collecting one side) has one
    /// part: the whole result.
    pub async fn plan_parts(
        &mut self,
        sql: &str,
        parameters: Option<(&RecordBatch, usize)>,
    ) -> Result<Option<PartitionedQuery>> {
        let query = match parameters {
            Some((values, row)) => self.bound_query_plan(sql, values, row).await?,
            None => match self.plan_sql(sql).await? {
                Planned::Query(query) => *query,
                Planned::Other(_) => return Ok(None),
            },
        };
        let (physical, reads) = self.optimize_and_plan(&query).await?;
        let parts = independent_parts(&physical).unwrap_or(1);
        let mut config = self.state.config().clone();
        if parts > 1 {
            // Each part runs alone, possibly on another server: a scan
            // partition must read its own file group, not steal its absent
            // siblings' files (DataFusion's default within one execution).
            // Only this query's settings say so; the session's later
            // queries keep the default.
            config
                .options_mut()
                .execution
                .enable_file_stream_work_stealing = false;
        }
        Ok(Some(PartitionedQuery {
            physical,
            reads,
            task_ctx: self.task_context(config),
            parts,
        }))
    }

    /// The context one query executes in: `config` (the session's settings,
    /// or a copy changed for this query only), the session's functions, and
    /// the engine's runtime with a memory pool of the query's own when
    /// queries are limited.
    fn task_context(&self, config: SessionConfig) -> Arc<TaskContext> {
        Arc::new(
            TaskContext::from(&self.state)
                .with_session_config(config)
                .with_runtime(self.engine.query_runtime()),
        )
    }

    /// Optimizes a query. The query's clock starts here: `now()` and
    /// `current_date()`, in the user's SQL and in policies alike, are this
    /// moment for the whole plan.
    ///
    /// When the plan carries its statement's key, the optimized plan is kept
    /// in the engine's cache beside the logical one, unless the query reads
    /// the clock (which the optimizer folds into a constant). Policies are
    /// applied beneath, when the plan is physically planned, so they read the
    /// clock of each query.
    fn optimize(&mut self, query: &QueryPlan) -> Result<LogicalPlan> {
        self.state.mark_start_execution();
        let kept = query
            .key
            .as_ref()
            .filter(|_| !reads_clock(&query.logical))
            .and_then(|key| Some((self.plan_caches()?, key)));
        if let Some((cache, key)) = kept
            && let Some(optimized) = cache.optimized.get(key)
        {
            return Ok(optimized);
        }
        let optimized = self
            .state
            .optimize(&query.logical)
            .map_err(EngineError::from_planning)?;
        if let Some((cache, key)) = kept {
            cache.optimized.insert(key.clone(), optimized.clone());
        }
        Ok(optimized)
    }

    /// The physical plan of an optimized query (on one partition when it
    /// only reads a table's first rows, see [`reads_first_rows_only`]).
    async fn physical_plan_of(&self, optimized: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
        let one_partition;
        let state = if reads_first_rows_only(optimized) {
            // A copy for this plan only, so that nothing (not even a planning
            // future dropped at the query timeout) leaves the session changed.
            let mut state = self.state.clone();
            state.config_mut().options_mut().execution.target_partitions = 1;
            one_partition = state;
            &one_partition
        } else {
            &self.state
        };
        state
            .query_planner()
            .create_physical_plan(optimized, state)
            .await
            .map_err(EngineError::from_planning)
    }

    /// Optimizes (see [`QuerySession::optimize`]) and plans a query, noting
    /// what it reads.
    async fn optimize_and_plan(
        &mut self,
        query: &QueryPlan,
    ) -> Result<(Arc<dyn ExecutionPlan>, Vec<TableRead>)> {
        let optimized = self.optimize(query)?;
        let reads = table_reads(&optimized)?;
        let physical = self.physical_plan_of(&optimized).await?;
        Ok((physical, reads))
    }

    /// Optimizes, plans and starts a query, noting what it reads.
    async fn run_query(&mut self, query: QueryPlan) -> Result<QueryOutput> {
        let (physical, reads) = self.optimize_and_plan(&query).await?;
        let schema = physical.schema();
        let stream = execute_stream(physical, self.task_context(self.state.config().clone()))
            .map_err(EngineError::from_execution)?;
        Ok(QueryOutput {
            schema,
            stream,
            reads,
        })
    }

    /// Parses `sql` and admits it; a query is planned (logically) under the
    /// role. A query's plan is kept in the engine's statement cache for the
    /// same user, role, current database and text: a Flight SQL client
    /// plans each statement three times (prepare, GetFlightInfo, DoGet),
    /// and nothing a plan depends on changes within an engine (its catalog
    /// and policies are fixed; files are listed, and the clock read, when
    /// the plan is optimized and physically planned, every time).
    async fn plan_sql(&self, sql: &str) -> Result<Planned> {
        let cache = self.plan_caches();
        let key = cache.map(|_| self.statement_key(sql));
        if let Some(cache) = cache
            && let Some(logical) = key.as_ref().and_then(|key| cache.logical.get(key))
        {
            return Ok(Planned::Query(Box::new(QueryPlan { logical, key })));
        }
        let statement = match admit(parse_one(sql)?)? {
            Admitted::Plan(statement) => statement,
            Admitted::Session(other) => return Ok(Planned::Other(other)),
        };
        let logical = self.logical_plan_of(statement).await?;
        if let Some((cache, key)) = cache.zip(key.as_ref()) {
            cache.logical.insert(key.clone(), logical.clone());
        }
        Ok(Planned::Query(Box::new(QueryPlan { logical, key })))
    }

    /// The engine's statement plan caches, when this session may share them
    /// (not when it registered functions of its own, which its plans may call).
    fn plan_caches(&self) -> Option<&StatementPlans> {
        self.engine
            .statement_plans
            .as_ref()
            .filter(|_| !self.private_functions)
    }

    /// What the plans of `sql` in this session depend on.
    fn statement_key(&self, sql: &str) -> StatementKey {
        StatementKey {
            user: self.user().to_string(),
            role: self.role().to_string(),
            database: self.current_database.clone(),
            sql: sql.to_string(),
        }
    }

    async fn logical_plan_of(&self, statement: DFStatement) -> Result<LogicalPlan> {
        self.check_table_references(&statement)?;
        let plan = self
            .state
            .statement_to_plan(statement)
            .await
            .map_err(EngineError::from_planning)?;
        check_read_only(&plan)?;
        Ok(plan)
    }

    /// Every table the statement names must be one the role may describe;
    /// a table that does not exist gets the same answer.
    fn check_table_references(&self, statement: &DFStatement) -> Result<()> {
        let references = self
            .state
            .resolve_table_references(statement)
            .map_err(EngineError::from_planning)?;
        let catalog = &self.engine.catalog.name;
        let current = self.current_database.as_deref().unwrap_or(NO_DATABASE);
        for reference in references {
            // `FROM generate_series(1, 3)`: a table function, not a table.
            if let TableReference::Bare { table } = &reference
                && self.state.table_functions().contains_key(table.as_ref())
            {
                continue;
            }
            let resolved = reference.clone().resolve(catalog, current);
            if resolved.catalog.as_ref() == catalog.as_str()
                && resolved.schema.as_ref() == "information_schema"
            {
                continue;
            }
            let name = TableName::new(resolved.schema.as_ref(), resolved.table.as_ref());
            let visible =
                resolved.catalog.as_ref() == catalog.as_str() && self.resolver.may_describe(&name);
            if !visible {
                return Err(self.no_such_table(&reference, &resolved));
            }
        }
        Ok(())
    }

    fn no_such_table(
        &self,
        reference: &TableReference,
        resolved: &ResolvedTableReference,
    ) -> EngineError {
        let (shown, hint) = match reference {
            TableReference::Bare { table } if self.current_database.is_none() => (
                table.to_string(),
                " (there is no current database: run USE <database> or qualify the name)",
            ),
            TableReference::Bare { .. } | TableReference::Partial { .. } => {
                (format!("{}.{}", resolved.schema, resolved.table), "")
            }
            TableReference::Full { .. } => (resolved.to_string(), ""),
        };
        EngineError::PermissionDenied(format!(
            "table '{shown}' does not exist or role '{}' may not read it{hint}",
            self.role()
        ))
    }

    fn databases_batch(&self) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "database_name",
            DataType::Utf8,
            false,
        )]));
        let names = StringArray::from(self.resolver.visible_databases());
        RecordBatch::try_new(schema, vec![Arc::new(names)]).expect("one string column")
    }
}

/// Parses exactly one statement.
fn parse_one(sql: &str) -> Result<DFStatement> {
    let dialect = GenericDialect {};
    let sql = accept_session_function_parens(sql);
    let mut statements = DFParser::parse_sql_with_dialect(&sql, &dialect).map_err(|e| {
        match EngineError::from_planning(e) {
            // sqlparser gives no position for "found: EOF": it is the end.
            EngineError::InvalidSql {
                message,
                position: None,
            } if message.ends_with("found: EOF") => EngineError::InvalidSql {
                message,
                position: Some(end_of(&sql)),
            },
            other => other,
        }
    })?;
    match statements.len() {
        0 => Err(EngineError::InvalidSql {
            message: "empty statement".into(),
            position: None,
        }),
        1 => {
            let mut statement = statements.pop_front().expect("one statement");
            number_placeholders(&mut statement)?;
            Ok(statement)
        }
        n => Err(EngineError::InvalidSql {
            message: format!("expected one statement per request, found {n}"),
            position: None,
        }),
    }
}

/// `?` placeholders become `$1`, `$2`, ... (see [`number_question_marks`]).
fn number_placeholders(statement: &mut DFStatement) -> Result<()> {
    let numbered = match statement {
        DFStatement::Statement(statement) => number_question_marks(statement),
        DFStatement::Explain(explain) => return number_placeholders(&mut explain.statement),
        _ => Ok(()),
    };
    numbered.map_err(|message| EngineError::InvalidSql {
        message,
        position: None,
    })
}

/// The position just past the end of `sql`.
fn end_of(sql: &str) -> SqlPosition {
    let line = sql.lines().count().max(1) as u64;
    let last = if sql.ends_with('\n') {
        ""
    } else {
        sql.lines().last().unwrap_or("")
    };
    SqlPosition {
        line: if sql.ends_with('\n') { line + 1 } else { line },
        column: last.chars().count() as u64 + 1,
    }
}

/// The schema of a logical plan, once every table it scans is one the role
/// may read rows of (not only describe): what execution would check first.
fn schema_if_readable(plan: &LogicalPlan) -> Result<SchemaRef> {
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(secured) = source_as_provider(&scan.source)?.downcast_ref::<SecuredTable>()
        {
            secured.deny_unless_select()?;
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(EngineError::from_planning)?;
    Ok(Arc::new(plan.schema().as_arrow().clone()))
}

/// The tables an optimized plan scans, with the columns it reads of each
/// (after projection pushdown) and the grants whose policy applies.
fn table_reads(plan: &LogicalPlan) -> Result<Vec<TableRead>> {
    let mut reads: Vec<TableRead> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let provider = source_as_provider(&scan.source)?;
            let columns: Vec<String> = scan
                .projected_schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let (table, policies) = match provider.downcast_ref::<SecuredTable>() {
                Some(secured) => {
                    let access = secured.access();
                    (access.table.to_string(), access.grants.clone())
                }
                None => (scan.table_name.to_string(), Vec::new()),
            };
            match reads.iter_mut().find(|r| r.table == table) {
                Some(read) => {
                    for column in columns {
                        if !read.columns.contains(&column) {
                            read.columns.push(column);
                        }
                    }
                }
                None => reads.push(TableRead {
                    table,
                    columns,
                    policies,
                }),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(reads)
}

/// Defense in depth behind the gate: a plan that would change anything is refused.
fn check_read_only(plan: &LogicalPlan) -> Result<()> {
    let mut offending = None;
    plan.apply(|node| {
        let kind = match node {
            LogicalPlan::Ddl(ddl) => Some(ddl.name().to_string()),
            LogicalPlan::Dml(dml) => Some(dml.op.to_string()),
            LogicalPlan::Copy(_) => Some("COPY".to_string()),
            LogicalPlan::Statement(statement) => Some(statement.name().to_string()),
            _ => None,
        };
        if kind.is_some() {
            offending = kind;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| EngineError::Internal(e.to_string()))?;
    match offending {
        Some(statement) => Err(EngineError::StatementRefused { statement }),
        None => Ok(()),
    }
}
