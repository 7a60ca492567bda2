//! `QuerySession`: SQL run under one user and runtime role, with a current
//! database.
//!
//! ```text
//! engine.session(user, role) ─▶ QuerySession
//!   session.plan(sql)          ─▶ PlannedStatement (schema, parts, execute)
//!   session.execute(sql)       ─▶ QueryOutput (plan, then run whole)
//!   session.table_schema(...)  ─▶ a table's columns as the role sees them
//! ```
//!
//! Planning happens on the query executor (see `executor.rs`), from a copy
//! of the session's planning state that the planned statement keeps.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::ExecutionPlan;
use lakegate_policy::{RuntimeRole, TableName};

use crate::error::{EngineError, Result};
use crate::executor::executor;
use crate::lake::Lake;
use crate::planner::Planner;
use crate::statement::{PlannedStatement, QueryOutput};
use crate::system_tables::{AUDIT_TABLE, SYSTEM_DATABASE};
use crate::wire::client_schema;
use crate::write::{CreatedTable, WriteOutcome, create_ingested, ingest};

/// A session: one user, one runtime role, a current database.
pub struct QuerySession {
    planner: Planner,
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession")
            .field("runtime", self.planner.resolver().runtime())
            .field("current_database", &self.planner.current_database())
            .finish_non_exhaustive()
    }
}

impl QuerySession {
    pub(crate) fn new(lake: Arc<Lake>, runtime: RuntimeRole, max_statement_bytes: usize) -> Self {
        Self {
            planner: Planner::new(lake, runtime, max_statement_bytes),
        }
    }

    /// The authenticated user.
    pub fn user(&self) -> &str {
        self.planner.user()
    }

    /// The runtime role.
    pub fn role(&self) -> &str {
        self.planner.role()
    }

    /// The current database, if any.
    pub fn current_database(&self) -> Option<&str> {
        self.planner.current_database()
    }

    /// The policy version the session plans under (kept for its lifetime).
    pub fn policy_version(&self) -> i64 {
        self.planner.lake().version()
    }

    /// Whether the session's role administers the whole lake (sees full plans).
    pub fn is_lake_admin(&self) -> bool {
        self.planner.is_lake_admin()
    }

    /// The databases the role may see (those holding a table it may describe).
    pub fn visible_databases(&self) -> Vec<String> {
        self.planner.resolver().visible_databases()
    }

    /// The tables the role may describe, as `(database, table)`, sorted.
    pub fn visible_tables(&self) -> Vec<(String, String)> {
        let resolver = self.planner.resolver();
        let mut tables: Vec<(String, String)> = self
            .planner
            .lake()
            .table_names()
            .filter(|name| resolver.may_describe(name))
            .map(|t| (t.database.clone(), t.table.clone()))
            .collect();
        if resolver.system_database().is_some() {
            tables.push((SYSTEM_DATABASE.to_string(), AUDIT_TABLE.to_string()));
        }
        tables.sort();
        tables
    }

    /// The columns of a table as the role sees them and as results carry
    /// them: visible columns only, masked columns with their masked type and
    /// `lakegate.mask` metadata. `None` when the role may not describe the
    /// table (or it does not exist).
    pub async fn table_schema(&self, database: &str, table: &str) -> Result<Option<SchemaRef>> {
        let name = TableName::new(database, table);
        let view_types = self.planner.lake().view_types();
        if database == SYSTEM_DATABASE {
            let audit = self.planner.resolver().may_describe(&name);
            return Ok(audit.then(|| client_schema(&lakegate_audit::audit_schema(), view_types)));
        }
        let resolver = self.planner.resolver_handle();
        let secured = executor()
            .run(async move {
                resolver
                    .secured_table(&name)
                    .await
                    .map_err(EngineError::from_planning)
            })
            .await?;
        Ok(secured.map(|t| {
            client_schema(
                &datafusion::catalog::TableProvider::schema(t.as_ref()),
                view_types,
            )
        }))
    }

    /// Makes `database` current, if the role may see it.
    pub fn use_database(&mut self, database: &str) -> Result<()> {
        self.planner.use_database(database)
    }

    /// Adds a scalar function to this session's SQL (for embedding
    /// applications and tests). Policies never see it.
    pub fn register_function(&mut self, function: ScalarUDF) {
        self.planner.register_function(function);
    }

    /// Plans one statement under the role: what it returns and how to run
    /// it. A denied statement fails here. `USE db` takes effect now.
    pub async fn plan(&mut self, sql: &str) -> Result<PlannedStatement> {
        self.plan_inner(sql, None).await
    }

    /// Plans a query with `parameters` bound to its placeholders (positional
    /// `$1`, `$2` take the columns in order; named `$region` takes the
    /// column of that name). A batch of several rows runs the query once
    /// per row, the results following one another.
    pub async fn plan_with_parameters(
        &mut self,
        sql: &str,
        parameters: RecordBatch,
    ) -> Result<PlannedStatement> {
        self.plan_inner(sql, Some(parameters)).await
    }

    async fn plan_inner(
        &mut self,
        sql: &str,
        parameters: Option<RecordBatch>,
    ) -> Result<PlannedStatement> {
        let planner = self.planner.clone();
        let sql = sql.to_string();
        let statement = executor()
            .run(PlannedStatement::plan(planner, sql, parameters))
            .await?;
        if let Some(database) = statement.switched_to() {
            self.planner.use_database(database)?;
        }
        Ok(statement)
    }

    /// Why `sql`, sent as an update (Flight SQL's `CommandStatementUpdate`),
    /// is refused: a write (`INSERT`, `CREATE TABLE AS`) names the privilege
    /// it needs and whether the role holds it; any other statement gets the
    /// SQL gate's answer, or, for a query, is told to run as a query.
    pub fn update_refusal(&self, sql: &str) -> EngineError {
        self.planner.update_refusal(sql)
    }

    /// Why bulk ingestion (Flight SQL's `CommandStatementIngest`) creating
    /// `table` in `database` (or the current database) is refused where no
    /// policy store can declare it: it needs CREATE_TABLE on the database,
    /// and a store.
    pub fn create_refusal(&self, database: Option<&str>, table: &str) -> EngineError {
        self.planner.create_refusal(database, table)
    }

    /// Whether `sql` writes rows (an INSERT, run with
    /// [`QuerySession::execute_write`], or a CREATE TABLE AS, run with
    /// [`QuerySession::create_table_as`]), not a query.
    pub fn is_write(&self, sql: &str) -> bool {
        self.planner.is_write(sql)
    }

    /// Whether `sql` is a `CREATE TABLE ... AS`.
    pub fn is_create_table_as(&self, sql: &str) -> bool {
        self.planner.is_create_table_as(sql)
    }

    /// Runs the `CREATE TABLE db.t [STORED AS PARQUET|DELTA] [LOCATION
    /// 'url'] AS SELECT ...` `sql`: checked (CREATE_TABLE on the database,
    /// no such table, an empty place under a registered location), its
    /// query read under the role's read policy, and its rows written as a
    /// new table, which the caller then declares in the policy store (or
    /// discards). `None`: IF NOT EXISTS, and the table exists.
    pub async fn create_table_as(&self, sql: &str) -> Result<Option<CreatedTable>> {
        let planner = self.planner.clone();
        let sql = sql.to_string();
        executor()
            .run(async move { planner.create_table_as(&sql).await })
            .await
    }

    /// Creates `table` in `database` (or the current database) holding
    /// `batches` (of `schema`), as a Parquet table in the database's place
    /// for new tables (bulk ingestion in mode create), checked as
    /// [`QuerySession::create_table_as`] is; the caller declares it.
    pub async fn create_ingested(
        &self,
        database: Option<&str>,
        table: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<CreatedTable> {
        let planner = self.planner.clone();
        let (database, table) = (database.map(str::to_string), table.to_string());
        executor()
            .run(async move {
                create_ingested(&planner, database.as_deref(), &table, schema, batches).await
            })
            .await
    }

    /// The placeholders of the INSERT `sql`, as a query's
    /// ([`PlannedStatement::parameter_schema`]); planning it checks the
    /// role may insert into the table and read what the source reads. A
    /// CREATE TABLE AS has none (it is checked when it runs).
    pub async fn write_parameter_schema(&self, sql: &str) -> Result<SchemaRef> {
        if self.is_create_table_as(sql) {
            // Checked when it runs: it takes no parameters.
            return Ok(Arc::new(arrow::datatypes::Schema::empty()));
        }
        let planner = self.planner.clone();
        let sql = sql.to_string();
        executor()
            .run(async move { planner.plan_write(&sql).await?.parameter_schema() })
            .await
    }

    /// Runs the INSERT `sql` (with `parameters` bound to its placeholders:
    /// every row of them, as one write): its source read under the role's
    /// read policy, every row checked against the role's insert grants,
    /// and all of it committed in one step, or nothing. Any other
    /// statement is refused with the reason it cannot run as an update.
    pub async fn execute_write(
        &self,
        sql: &str,
        parameters: Option<RecordBatch>,
    ) -> Result<WriteOutcome> {
        let planner = self.planner.clone();
        let sql = sql.to_string();
        executor()
            .run(async move {
                let write = planner.plan_write(&sql).await?;
                write.execute(&planner, parameters.as_ref()).await
            })
            .await
    }

    /// Appends `batches` (of `schema`) to `table` of `database` (or the
    /// current database), as an INSERT of those rows would: columns are
    /// matched by name, absent ones are NULL, every row is checked, and all
    /// of them are committed in one step or none.
    pub async fn ingest(
        &self,
        database: Option<&str>,
        table: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<WriteOutcome> {
        let planner = self.planner.clone();
        let (database, table) = (database.map(str::to_string), table.to_string());
        executor()
            .run(
                async move { ingest(&planner, database.as_deref(), &table, schema, batches).await },
            )
            .await
    }

    /// Runs one statement: plans it, then reads its whole result. An
    /// INSERT is written ([`QuerySession::execute_write`]) and answers with
    /// one row, the count of rows written.
    pub async fn execute(&mut self, sql: &str) -> Result<QueryOutput> {
        if self.is_write(sql) {
            let outcome = self.execute_write(sql, None).await?;
            return Ok(QueryOutput::written(&outcome));
        }
        self.plan(sql).await?.execute().await
    }

    /// The physical plan of a query, as it would run (for tests and tools that
    /// inspect plans: it shows what lies beneath policy barriers).
    pub async fn physical_plan(&mut self, sql: &str) -> Result<Arc<dyn ExecutionPlan>> {
        self.plan(sql).await?.physical_plan().await
    }
}
