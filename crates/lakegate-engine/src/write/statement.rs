//! The statements that write: `INSERT INTO db.t [(columns)] VALUES ... |
//! SELECT ...` planned under the role, and bulk ingestion of batches.
//!
//! An INSERT's source is planned exactly as a query of the same session
//! (the secured catalog, the table checks, the barrier), so it reads only
//! what the role may read. Its placeholders (`VALUES ($1, $2)`) are bound
//! when it runs: several parameter rows become one write of all of them.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Insert, Statement, TableObject};
use lakegate_policy::TableName;

use super::{ColumnMatch, WriteOutcome, WriteTarget, shaped, write_rows};
use crate::error::{EngineError, Result};
use crate::parameters::{parameter_schema, parameter_values};
use crate::plan_facts::table_reads;
use crate::planner::Planner;
use crate::write_refusals::{ingested_database, object_name_parts, table_name};

/// An INSERT planned under the session's role, placeholders unbound.
pub(crate) struct PlannedWrite {
    target: WriteTarget,
    rows: LogicalPlan,
    columns: Option<Vec<String>>,
}

/// Whether `statement` is an INSERT (which [`plan_insert`] plans).
pub(crate) fn is_insert(statement: &DFStatement) -> bool {
    matches!(statement, DFStatement::Statement(s) if matches!(s.as_ref(), Statement::Insert(_)))
}

/// Plans the INSERT `statement`: the target checked for an insert grant,
/// the source planned under the role's read policy.
pub(crate) async fn plan_insert(planner: &Planner, statement: DFStatement) -> Result<PlannedWrite> {
    let DFStatement::Statement(statement) = statement else {
        return Err(not_insert());
    };
    let Statement::Insert(insert) = *statement else {
        return Err(not_insert());
    };
    let source = plain_insert(&insert)?;
    let TableObject::TableName(name) = &insert.table else {
        return Err(refused("INSERT INTO a table function"));
    };
    let name = table_name(name, planner.current_database())?;
    let target = WriteTarget::of(planner.lake(), planner.role(), &name)?;
    let columns = if insert.columns.is_empty() {
        None
    } else {
        Some(
            insert
                .columns
                .iter()
                .map(|column| match object_name_parts(column).as_slice() {
                    [one] => Ok(one.clone()),
                    _ => Err(EngineError::InvalidSql {
                        message: format!("INSERT names columns of the table only: '{column}'"),
                        position: None,
                    }),
                })
                .collect::<Result<Vec<_>>>()?,
        )
    };
    let query = DFStatement::Statement(Box::new(Statement::Query(source)));
    let rows = planner.logical_plan_of(query).await?;
    Ok(PlannedWrite {
        target,
        rows,
        columns,
    })
}

/// The source of an INSERT of the one form Lakegate runs; anything more
/// (OVERWRITE, ON CONFLICT, RETURNING, dialect options) is refused.
fn plain_insert(insert: &Insert) -> Result<Box<datafusion::sql::sqlparser::ast::Query>> {
    let unsupported = [
        (insert.overwrite, "INSERT OVERWRITE"),
        (
            insert.or.is_some() || insert.replace_into,
            "INSERT OR REPLACE",
        ),
        (insert.ignore, "INSERT IGNORE"),
        (insert.on.is_some(), "INSERT ... ON CONFLICT"),
        (
            insert.returning.is_some() || insert.output.is_some(),
            "INSERT ... RETURNING",
        ),
        (insert.partitioned.is_some(), "INSERT ... PARTITION"),
        (!insert.assignments.is_empty(), "INSERT ... SET"),
        (insert.table_alias.is_some(), "INSERT INTO a table alias"),
        (
            !insert.after_columns.is_empty()
                || insert.priority.is_some()
                || insert.insert_alias.is_some()
                || insert.settings.is_some()
                || insert.format_clause.is_some()
                || insert.multi_table_insert_type.is_some(),
            "this form of INSERT",
        ),
    ];
    if let Some((_, kind)) = unsupported.iter().find(|(present, _)| *present) {
        return Err(refused(kind));
    }
    insert
        .source
        .clone()
        .ok_or_else(|| refused("INSERT without rows"))
}

impl PlannedWrite {
    /// One field per placeholder of the source, as for a query.
    pub(crate) fn parameter_schema(&self) -> Result<SchemaRef> {
        parameter_schema(&self.rows)
    }

    /// Runs the write: each parameter row bound in turn (all of them one
    /// write), shaped to the table, checked and committed.
    pub(crate) async fn execute(
        self,
        planner: &Planner,
        parameters: Option<&RecordBatch>,
    ) -> Result<WriteOutcome> {
        let rows = match parameters.filter(|p| p.num_rows() > 0) {
            None => self.rows,
            Some(values) => {
                let mut bound = LogicalPlanBuilder::from(bind(&self.rows, values, 0)?);
                for row in 1..values.num_rows() {
                    bound = bound
                        .union(bind(&self.rows, values, row)?)
                        .map_err(EngineError::from_planning)?;
                }
                bound.build().map_err(EngineError::from_planning)?
            }
        };
        let reads = table_reads(&rows)?;
        let rows = shaped(rows, &self.target, ColumnMatch::Positional(self.columns))?;
        write_rows(planner.lake(), planner.user(), &self.target, rows, reads).await
    }
}

fn bind(rows: &LogicalPlan, values: &RecordBatch, row: usize) -> Result<LogicalPlan> {
    let values = parameter_values(rows, values, row)?;
    rows.clone()
        .with_param_values(values)
        .map_err(EngineError::from_planning)
}

/// Appends `batches` (of `schema`) to `table` of `database` (or the
/// current database): columns are matched by name, absent ones are NULL.
pub(crate) async fn ingest(
    planner: &Planner,
    database: Option<&str>,
    table: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<WriteOutcome> {
    let database = ingested_database(database, planner.current_database(), table)?;
    let name = TableName::new(database, table);
    let target = WriteTarget::of(planner.lake(), planner.role(), &name)?;
    let ingested = MemTable::try_new(schema, vec![batches]).map_err(EngineError::from_planning)?;
    let rows = LogicalPlanBuilder::scan("ingested", provider_as_source(Arc::new(ingested)), None)
        .and_then(LogicalPlanBuilder::build)
        .map_err(EngineError::from_planning)?;
    let rows = shaped(rows, &target, ColumnMatch::ByName)?;
    write_rows(planner.lake(), planner.user(), &target, rows, Vec::new()).await
}

fn not_insert() -> EngineError {
    EngineError::Internal("a write that is not an INSERT reached the INSERT planner".into())
}

fn refused(kind: &str) -> EngineError {
    EngineError::StatementRefused {
        statement: kind.to_string(),
    }
}
