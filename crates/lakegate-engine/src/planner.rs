//! `Planner`: one user's statements planned under one runtime role, from text
//! to logical plan, optimized plan and physical plan.
//!
//! ```text
//! SQL text ─▶ parse (one statement, size checked) ─▶ gate ─▶ table check ─▶ logical plan
//!                                          │              │
//!                                          │              └─ a table the role may not describe:
//!                                          │                 "does not exist or role may not read it"
//!                                          └─ USE, SHOW DATABASES, EXPLAIN (non-admin) answered here
//! ```
//!
//! A planner is a session's planning state (DataFusion's `SessionState` over
//! the role's secured catalog, the current database); it is cloned into each
//! planned statement, which runs on the query executor.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ResolvedTableReference, TableReference};
use datafusion::execution::{FunctionRegistry, SessionState, TaskContext};
use datafusion::logical_expr::{DescribeTable, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DFStatement;
use lakegate_audit::TableRead;
use lakegate_policy::{RuntimeRole, TableName};

use crate::error::{EngineError, Result};
use crate::explain::explain_batch;
use crate::functions::session_functions;
use crate::gate::{Admitted, SessionStatement, admit};
use crate::lake::{Lake, StatementKey, StatementPlans};
use crate::parameters::parameter_values;
use crate::parse::parse_one;
use crate::plan_facts::{check_read_only, reads_first_rows_only, schema_if_readable, table_reads};
use crate::secured_catalog::{SecuredCatalogList, SecuredResolver};
use crate::secured_table::{gather_statistics, reads_clock};
use crate::wire::client_schema;
use crate::write::{
    CreatedTable, ParsedCreate, PlannedWrite, create_table_as, is_create_table_as, is_insert,
    parse_create, plan_insert,
};
use crate::write_refusals::{create_refusal, ingested_database, write_refusal};

/// The default schema while a session has no current database: a name no
/// database can have (database names cannot contain '.'), so unqualified
/// table names resolve to nothing.
pub(crate) const NO_DATABASE: &str = "no.database";

/// Statements longer than this are planned every time, never kept: a few
/// very long distinct texts would otherwise fill the plan cache's memory.
const MAX_KEPT_STATEMENT_BYTES: usize = 64 * 1024;

/// See the module documentation.
#[derive(Clone)]
pub(crate) struct Planner {
    lake: Arc<Lake>,
    resolver: Arc<SecuredResolver>,
    state: SessionState,
    current_database: Option<String>,
    /// Whether this session registered functions of its own: its plans may
    /// call them, so they are not shared through the statement cache.
    private_functions: bool,
    /// The longest statement accepted, in bytes.
    max_statement_bytes: usize,
}

/// A statement through the gate, planned when it is a query.
pub(crate) enum Planned {
    /// A query's logical plan (boxed: it is far larger than the others).
    Query(Box<QueryPlan>),
    /// Any other statement, which the session answers itself.
    Other(SessionStatement),
}

/// A query's logical plan, with the key of its statement's kept plans when it
/// is exactly the plan of a statement's text (as [`Planner::plan_sql`]
/// gives it). Only such a plan may be kept, or taken, under that key: a plan
/// with parameters bound, or an EXPLAIN's inner statement, carries none.
#[derive(Clone)]
pub(crate) struct QueryPlan {
    pub(crate) logical: LogicalPlan,
    key: Option<StatementKey>,
    /// The plan as DataFusion's analyzer left it, when it was analyzed for
    /// its result's schema: the optimizer starts from it instead of running
    /// the analyzer again (type coercion alone was a tenth of the time a
    /// five-table join's logical optimization took).
    analyzed: Option<LogicalPlan>,
}

impl QueryPlan {
    /// A plan that belongs to no statement's text.
    pub(crate) fn unkept(logical: LogicalPlan) -> Self {
        Self::new(logical, None)
    }

    fn new(logical: LogicalPlan, key: Option<StatementKey>) -> Self {
        Self {
            logical,
            key,
            analyzed: None,
        }
    }

    /// This plan with `row` of `parameters` bound to its placeholders:
    /// another plan than its text's, so it loses the key.
    pub(crate) fn bind(&self, parameters: &RecordBatch, row: usize) -> Result<Self> {
        let values = parameter_values(&self.logical, parameters, row)?;
        let logical = self
            .logical
            .clone()
            .with_param_values(values)
            .map_err(EngineError::from_planning)?;
        Ok(Self::unkept(logical))
    }
}

impl Planner {
    pub(crate) fn new(lake: Arc<Lake>, runtime: RuntimeRole, max_statement_bytes: usize) -> Self {
        let functions = session_functions(&runtime.user, &runtime.role);
        let resolver = Arc::new(SecuredResolver::new(Arc::clone(&lake), runtime));
        // A clone of the template, not a rebuild: a builder registers every
        // function again, which was most of the cost of opening a session.
        let mut state = lake.user_template().clone();
        state.register_catalog_list(Arc::new(SecuredCatalogList::new(Arc::clone(&resolver))));
        for f in functions {
            state
                .register_udf(f)
                .expect("registering a function cannot fail");
        }
        let current_database = lake.catalog().default_database.clone();
        Self {
            lake,
            resolver,
            state,
            current_database,
            private_functions: false,
            max_statement_bytes,
        }
    }

    pub(crate) fn user(&self) -> &str {
        &self.resolver.runtime().user
    }

    pub(crate) fn role(&self) -> &str {
        &self.resolver.runtime().role
    }

    pub(crate) fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    pub(crate) fn resolver(&self) -> &SecuredResolver {
        &self.resolver
    }

    /// The resolver, for work that outlives a borrow of the planner.
    pub(crate) fn resolver_handle(&self) -> Arc<SecuredResolver> {
        Arc::clone(&self.resolver)
    }

    pub(crate) fn current_database(&self) -> Option<&str> {
        self.current_database.as_deref()
    }

    /// Whether the role administers the whole lake (sees full plans).
    pub(crate) fn is_lake_admin(&self) -> bool {
        self.lake.catalog().policy.is_lake_admin(self.role())
    }

    /// Makes `database` current, if the role may see it.
    pub(crate) fn use_database(&mut self, database: &str) -> Result<()> {
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

    /// Adds a scalar function to this planner's SQL; policies never see it.
    pub(crate) fn register_function(&mut self, function: ScalarUDF) {
        self.private_functions = true;
        self.state
            .register_udf(Arc::new(function))
            .expect("registering a function cannot fail");
    }

    /// Why `sql`, sent as an update rather than a query, is refused: a
    /// write names the privilege it needs; anything else is refused by the
    /// gate, or, for a query, because an update would discard its rows.
    pub(crate) fn update_refusal(&self, sql: &str) -> EngineError {
        match parse_create(sql, self.max_statement_bytes, self.current_database()) {
            Ok(Some(create)) => return create_refusal(&self.lake, self.role(), create.database()),
            Err(ParsedCreate::Refused(refusal)) => return refusal,
            Ok(None) | Err(ParsedCreate::Other(_)) => {}
        }
        let statement = match parse_one(sql, self.max_statement_bytes) {
            Ok(statement) => statement,
            Err(error) => return error,
        };
        if let Some(refusal) = self.write_refusal(&statement) {
            return refusal;
        }
        match admit(statement) {
            Err(refusal) => refusal,
            Ok(_) => EngineError::InvalidSql {
                message: "this statement is a query: sent as an update its rows would be \
                          discarded; execute it as a query"
                    .into(),
                position: None,
            },
        }
    }

    /// The refusal of `statement` when it writes data (see
    /// [`write_refusal`]).
    fn write_refusal(&self, statement: &DFStatement) -> Option<EngineError> {
        write_refusal(
            statement,
            &self.lake,
            self.role(),
            self.current_database.as_deref(),
        )
    }

    /// Why bulk ingestion creating `table` (in `database`, or the current
    /// database) is refused: it needs CREATE_TABLE on the database, and
    /// Lakegate does not create tables yet.
    pub(crate) fn create_refusal(&self, database: Option<&str>, table: &str) -> EngineError {
        match ingested_database(database, self.current_database.as_deref(), table) {
            Ok(database) => create_refusal(&self.lake, self.role(), database),
            Err(error) => error,
        }
    }

    /// Whether `sql` is a statement that writes rows Lakegate runs (an
    /// INSERT or a CREATE TABLE AS); unparsable text is not. Asked of every
    /// statement a Flight client sends, so text whose first word is plainly
    /// neither is answered without parsing it (a query's plan is usually
    /// kept, and would otherwise be parsed for this alone).
    pub(crate) fn is_write(&self, sql: &str) -> bool {
        let text = sql.trim_start();
        let starts_with_comment = text.starts_with("--") || text.starts_with("/*");
        let first_word_is_insert = text
            .get(..6)
            .is_some_and(|word| word.eq_ignore_ascii_case("insert"));
        let inserts = (starts_with_comment || first_word_is_insert)
            && parse_one(sql, self.max_statement_bytes)
                .is_ok_and(|statement| is_insert(&statement));
        inserts || self.is_create_table_as(sql)
    }

    /// Whether `sql` is a `CREATE TABLE ... AS` (of any form: a refused one
    /// is answered by [`Planner::create_table_as`] too).
    pub(crate) fn is_create_table_as(&self, sql: &str) -> bool {
        is_create_table_as(sql, self.max_statement_bytes)
    }

    /// Runs the `CREATE TABLE ... AS` `sql` under the role (see
    /// `write/create.rs`): the table written, ready to be declared, or
    /// `None` when it says IF NOT EXISTS and the table exists.
    pub(crate) async fn create_table_as(&self, sql: &str) -> Result<Option<CreatedTable>> {
        match parse_create(sql, self.max_statement_bytes, self.current_database()) {
            Ok(Some(create)) => create_table_as(self, create).await,
            Ok(None) => Err(self.update_refusal(sql)),
            Err(ParsedCreate::Other(error) | ParsedCreate::Refused(error)) => Err(error),
        }
    }

    /// Plans the INSERT `sql` under the role (see `write/statement.rs`).
    pub(crate) async fn plan_write(&self, sql: &str) -> Result<PlannedWrite> {
        let statement = parse_one(sql, self.max_statement_bytes)?;
        if !is_insert(&statement) {
            return Err(self.update_refusal(sql));
        }
        plan_insert(self, statement).await
    }

    /// Parses `sql` and admits it; a query is planned (logically) under the
    /// role. A query's plan is kept in the engine's statement cache for the
    /// same user, role, current database and text: a Flight SQL client
    /// plans each statement three times (prepare, GetFlightInfo, DoGet),
    /// and nothing a plan depends on changes within an engine (its catalog
    /// and policies are fixed; files are listed, and the clock read, when
    /// the plan is optimized and physically planned, every time).
    pub(crate) async fn plan_sql(&self, sql: &str) -> Result<Planned> {
        let cache = self
            .plan_caches()
            .filter(|_| sql.len() <= MAX_KEPT_STATEMENT_BYTES);
        let key = cache.map(|_| self.statement_key(sql));
        if let Some(cache) = cache
            && let Some(logical) = key.as_ref().and_then(|key| cache.logical.get(key))
        {
            return Ok(Planned::Query(Box::new(QueryPlan::new(logical, key))));
        }
        let statement = parse_one(sql, self.max_statement_bytes)?;
        if let Some(refusal) = self.write_refusal(&statement) {
            return Err(refusal);
        }
        let statement = match admit(statement)? {
            Admitted::Plan(statement) => statement,
            Admitted::Session(other) => return Ok(Planned::Other(other)),
        };
        let logical = self.logical_plan_of(statement).await?;
        if let Some((cache, key)) = cache.zip(key.as_ref()) {
            cache.logical.insert(key.clone(), logical.clone());
        }
        Ok(Planned::Query(Box::new(QueryPlan::new(logical, key))))
    }

    /// The answer to a statement the session answers itself, and the
    /// database it makes current (USE).
    pub(crate) async fn answer(
        &mut self,
        statement: SessionStatement,
    ) -> Result<(SessionAnswer, Option<String>)> {
        match statement {
            SessionStatement::ShowDatabases => {
                let names = StringArray::from(self.resolver.visible_databases());
                Ok((
                    SessionAnswer::Batch(one_column("database_name", names)),
                    None,
                ))
            }
            SessionStatement::Use(database) => {
                self.use_database(&database)?;
                let names = StringArray::from(vec![database.clone()]);
                let batch = one_column("current_database", names);
                Ok((SessionAnswer::Batch(batch), Some(database)))
            }
            SessionStatement::Explain {
                statement,
                inner,
                analyze,
            } => {
                if self.is_lake_admin() {
                    let logical = self.logical_plan_of(*statement).await?;
                    return Ok((
                        SessionAnswer::Query(Box::new(QueryPlan::unkept(logical))),
                        None,
                    ));
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
                Ok((SessionAnswer::Batch(batch), None))
            }
        }
    }

    /// The engine's statement plan caches, when this session may share them
    /// (not when it registered functions of its own, which its plans may call).
    fn plan_caches(&self) -> Option<&StatementPlans> {
        self.lake
            .statement_plans()
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

    pub(crate) async fn logical_plan_of(&self, statement: DFStatement) -> Result<LogicalPlan> {
        self.check_table_references(&statement)?;
        let plan = self
            .state
            .statement_to_plan(statement)
            .await
            .map_err(EngineError::from_planning)?;
        check_read_only(&plan)?;
        // Before the optimizer orders the query's joins by them.
        gather_statistics(&plan, &self.state).await;
        Ok(match plan {
            // DESCRIBE shows the types results arrive with.
            LogicalPlan::DescribeTable(describe) => LogicalPlan::DescribeTable(DescribeTable {
                schema: client_schema(&describe.schema, self.lake.view_types()),
                output_schema: describe.output_schema,
            }),
            other => other,
        })
    }

    /// Every table the statement names must be one the role may describe;
    /// a table that does not exist gets the same answer.
    fn check_table_references(&self, statement: &DFStatement) -> Result<()> {
        let references = self
            .state
            .resolve_table_references(statement)
            .map_err(EngineError::from_planning)?;
        let catalog = &self.lake.catalog().name;
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

    /// Optimizes a query. The query's clock starts here: `now()` and
    /// `current_date()`, in the user's SQL and in policies alike, are this
    /// moment for the whole plan.
    ///
    /// When the plan carries its statement's key, the optimized plan is kept
    /// in the engine's cache beside the logical one, unless the query reads
    /// the clock (which the optimizer folds into a constant). Policies are
    /// applied beneath, when the plan is physically planned, so they read the
    /// clock of each query.
    pub(crate) fn optimize(&mut self, query: &QueryPlan) -> Result<LogicalPlan> {
        self.state.mark_start_execution();
        let kept = query
            .key
            .as_ref()
            .filter(|_| !reads_clock(&query.logical))
            .and_then(|key| Some((self.plan_caches()?, key)));
        let optimize = || {
            match &query.analyzed {
                Some(analyzed) => {
                    self.state
                        .optimizer()
                        .optimize(analyzed.clone(), &self.state, |_, _| {})
                }
                None => self.state.optimize(&query.logical),
            }
            .map_err(EngineError::from_planning)
        };
        match kept {
            Some((cache, key)) => cache.optimized.get_or_try_insert_with(key, optimize),
            None => optimize(),
        }
    }

    /// The physical plan of an optimized query (on one partition when it
    /// only reads a table's first rows, see [`reads_first_rows_only`]).
    pub(crate) async fn physical_plan_of(
        &self,
        optimized: &LogicalPlan,
    ) -> Result<Arc<dyn ExecutionPlan>> {
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

    /// Optimizes (see [`Planner::optimize`]) and plans a query, noting what
    /// it reads.
    pub(crate) async fn optimize_and_plan(
        &mut self,
        query: &QueryPlan,
    ) -> Result<(Arc<dyn ExecutionPlan>, Vec<TableRead>)> {
        let optimized = self.optimize(query)?;
        let reads = table_reads(&optimized)?;
        let physical = self.physical_plan_of(&optimized).await?;
        Ok((physical, reads))
    }

    /// The schema of a query's result ([`Planner::analyzed_schema`]), kept
    /// beside its statement's plans: a statement planned again (a prepared
    /// statement's GetFlightInfo, its ticket's DoGet) runs no analyzer pass.
    /// A plan analyzed here keeps its analyzed form for the optimizer.
    pub(crate) fn result_schema(&self, query: &mut QueryPlan) -> Result<SchemaRef> {
        let kept = query
            .key
            .as_ref()
            .and_then(|key| Some((self.plan_caches()?, key)));
        let mut analyze = || {
            let analyzed = self.analyzed(&query.logical)?;
            let schema = schema_if_readable(analyzed.as_ref().unwrap_or(&query.logical))?;
            query.analyzed = analyzed;
            Ok(schema)
        };
        match kept {
            Some((cache, key)) => cache.schemas.get_or_try_insert_with(key, analyze),
            None => analyze(),
        }
    }

    /// The schema `plan` will have once DataFusion's analyzer has coerced its
    /// types (a `UNION` of `NULL` and a number is a number), which the
    /// optimizer then keeps: what a statement's result is.
    pub(crate) fn analyzed_schema(&self, plan: &LogicalPlan) -> Result<SchemaRef> {
        schema_if_readable(self.analyzed(plan)?.as_ref().unwrap_or(plan))
    }

    /// `plan` through DataFusion's analyzer; `None` for an EXPLAIN, whose
    /// own columns are fixed (the optimizer analyzes the plan it explains).
    fn analyzed(&self, plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
        if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
            return Ok(None);
        }
        self.state
            .analyzer()
            .execute_and_check(plan.clone(), self.state.config_options(), |_, _| {})
            .map(Some)
            .map_err(EngineError::from_planning)
    }

    /// The session's settings, for a query's task context.
    pub(crate) fn config(&self) -> SessionConfig {
        self.state.config().clone()
    }

    /// The context one query executes in: `config` (the session's settings,
    /// or a copy changed for this query only), the session's functions, and
    /// the engine's runtime with a memory pool of the query's own when
    /// queries are limited.
    pub(crate) fn task_context(&self, config: SessionConfig) -> Arc<TaskContext> {
        Arc::new(
            TaskContext::from(&self.state)
                .with_session_config(config)
                .with_runtime(self.lake.query_runtime()),
        )
    }
}

/// What the session answers a statement that is not a query with.
pub(crate) enum SessionAnswer {
    /// A result computed at once.
    Batch(RecordBatch),
    /// A query to run (an administrator's EXPLAIN); boxed, being large.
    Query(Box<QueryPlan>),
}

/// A one-row-per-value batch of one text column.
fn one_column(name: &str, values: StringArray) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(values)]).expect("one string column")
}
