//! Checking written rows against the role's insert grants, and streaming
//! the accepted ones into the table's new object.
//!
//! The rows to write become a view in a policy context of their own, and
//! one SQL statement numbers, for each row, the first insert grant that
//! accepts it (PostgreSQL's `WITH CHECK`):
//!
//! ```sql
//! SELECT *, CASE WHEN coalesce((<check of grant 0>), false) AND "ssn" IS NULL THEN 0
//!                WHEN ... THEN 1
//!                ELSE -1 END AS "__lakegate_grant"
//! FROM "__lakegate_write"."written"."rows" AS "<table>"
//! ```
//!
//! Checks are policy SQL: planned with the policy's rights (a check's
//! subquery reads stored tables, as a row filter's does), with
//! `current_user()` and `current_role()` the writer's, and the table's
//! database current. A row numbered -1 refuses the whole statement before
//! its object is committed. A NULL check refuses the row, as in PostgreSQL.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, Schema, SchemaRef};
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider,
};
use datafusion::execution::{SessionState, SessionStateBuilder, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use futures::StreamExt;
use lakegate_policy::WriteGrant;

use super::WriteTarget;
use super::commit::{CommittedObject, PendingWrite};
use crate::error::{EngineError, Result};
use crate::lake::Lake;
use crate::sql_text::{accept_session_function_parens, quote_ident, sql_string};

/// The catalog the rows being written live in, in the checking context
/// only: no user statement can name it.
const WRITE_CATALOG: &str = "__lakegate_write";

/// The column numbering the grant that accepts each row.
const GRANT_COLUMN: &str = "__lakegate_grant";

/// A checked and committed write.
pub(crate) struct Checked {
    pub(crate) committed: Option<CommittedObject>,
    pub(crate) grants: Vec<String>,
}

/// Checks `rows` (shaped to the table) and commits them, or nothing.
pub(crate) async fn check_and_commit(
    lake: &Arc<Lake>,
    user: &str,
    target: &WriteTarget,
    rows: LogicalPlan,
) -> Result<Checked> {
    let access = &target.access;
    let stored: SchemaRef = Arc::new(target.stored_schema());
    let mut state = checking_state(lake, user, target, rows)?;
    // The write's clock starts here: `now()` in the rows and in the checks
    // is this moment.
    state.mark_start_execution();
    let columns: Vec<String> = stored
        .fields()
        .iter()
        .map(|f| quote_ident(f.name()))
        .collect();
    let table_alias = quote_ident(&target.table.name.table);
    let written = format!(
        "{}.\"written\".\"rows\" AS {table_alias}",
        quote_ident(WRITE_CATALOG)
    );
    let numbered = !access.accepts_every_row(&target.policy_columns);
    let sql = if numbered {
        let cases: Vec<String> = access
            .grants
            .iter()
            .enumerate()
            .map(|(i, grant)| {
                format!(
                    "WHEN {} THEN {i}",
                    acceptance(grant, &target.policy_columns, &stored)
                )
            })
            .collect();
        format!(
            "SELECT {}, CASE {} ELSE -1 END AS {} FROM {written}",
            columns.join(", "),
            cases.join(" "),
            quote_ident(GRANT_COLUMN)
        )
    } else {
        format!("SELECT {} FROM {written}", columns.join(", "))
    };
    // Once, over the composed text: checks may write current_user().
    let sql = accept_session_function_parens(&sql);
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state
        .sql_to_statement(&sql, &dialect)
        .map_err(EngineError::from_planning)?;
    let plan = state
        .statement_to_plan(statement)
        .await
        .map_err(EngineError::from_planning)?;
    let physical = state
        .create_physical_plan(&plan)
        .await
        .map_err(EngineError::from_planning)?;
    let context = Arc::new(TaskContext::from(&state).with_runtime(lake.query_runtime()));
    let mut stream = execute_stream(physical, context).map_err(EngineError::from_execution)?;

    let runtime = lake.user_template().runtime_env();
    let mut object = PendingWrite::start(lake, target, Arc::clone(&stored))?;
    let mut used = BTreeSet::new();
    if !numbered {
        // A grant accepting every row: the first such.
        let first = access
            .grants
            .iter()
            .position(|g| g.check.is_none() && g.columns.len() == target.policy_columns.len());
        used.extend(first);
    }
    while let Some(batch) = stream.next().await {
        let written = batch
            .map_err(EngineError::from_execution)
            .and_then(|batch| {
                let batch = if numbered {
                    accepted(&batch, target, &mut used)?
                } else {
                    batch
                };
                conform(batch, object.schema())
            });
        let written = match written {
            Ok(batch) => batch,
            Err(error) => {
                object.abort().await;
                return Err(error);
            }
        };
        if let Err(error) = object.write(&written).await {
            object.abort().await;
            return Err(error);
        }
    }
    let committed = object.commit(runtime, lake.table_writes()).await?;
    Ok(Checked {
        committed,
        grants: used
            .into_iter()
            .map(|i| access.grants[i].grant.clone())
            .collect(),
    })
}

/// The policy context checks are planned in: the stored tables, and the
/// rows being written as `__lakegate_write.written.rows`.
fn checking_state(
    lake: &Lake,
    user: &str,
    target: &WriteTarget,
    rows: LogicalPlan,
) -> Result<SessionState> {
    let policy = lake.policy_state(user, &target.access.role);
    let name = &lake.catalog().name;
    let stored = policy
        .catalog_list()
        .catalog(name)
        .ok_or_else(|| EngineError::Internal("the policy context has no catalog".into()))?;
    let catalogs = MemoryCatalogProviderList::new();
    catalogs.register_catalog(name.clone(), stored);
    let written = MemorySchemaProvider::new();
    written
        .register_table("rows".into(), Arc::new(ViewTable::new(rows, None)))
        .map_err(EngineError::from_planning)?;
    let write_catalog = MemoryCatalogProvider::new();
    write_catalog
        .register_schema("written", Arc::new(written))
        .map_err(EngineError::from_planning)?;
    catalogs.register_catalog(WRITE_CATALOG.into(), Arc::new(write_catalog));
    let mut state = SessionStateBuilder::new_from_existing(policy)
        .with_catalog_list(Arc::new(catalogs))
        .build();
    state.config_mut().options_mut().catalog.default_schema = target.table.name.database.clone();
    Ok(state)
}

/// When `grant` accepts a row: its check holds (NULL does not), and every
/// policy column outside its list is NULL.
fn acceptance(grant: &WriteGrant, policy_columns: &[String], stored: &Schema) -> String {
    let mut conditions: Vec<String> = grant
        .check
        .iter()
        .map(|check| format!("coalesce(({check}), false)"))
        .collect();
    conditions.extend(
        policy_columns
            .iter()
            .filter(|c| !grant.columns.contains(c))
            .map(|c| null_condition(stored, c)),
    );
    if conditions.is_empty() {
        "true".to_string()
    } else {
        conditions.join(" AND ")
    }
}

/// `<path> IS NULL` for a policy column (a column, or a nested field by
/// dotted path). A field inside a list is not addressable row by row: the
/// whole list must then be NULL, which is stricter, never looser.
fn null_condition(stored: &Schema, path: &str) -> String {
    if stored.field_with_name(path).is_ok() {
        return format!("{} IS NULL", quote_ident(path));
    }
    let Some(top) = stored.fields().iter().find(|f| {
        path.strip_prefix(f.name().as_str())
            .is_some_and(|rest| rest.starts_with('.'))
    }) else {
        // Not a stored column (cannot happen for a checked catalog): refuse.
        return "false".to_string();
    };
    let mut sql = quote_ident(top.name());
    let mut data_type = top.data_type();
    for segment in path[top.name().len() + 1..].split('.') {
        let DataType::Struct(fields) = data_type else {
            break;
        };
        let Some((_, field)) = fields.find(segment) else {
            return "false".to_string();
        };
        sql = format!("get_field({sql}, {})", sql_string(segment));
        data_type = field.data_type();
    }
    format!("{sql} IS NULL")
}

/// The rows of `batch` without the grant column, if each has a grant;
/// else the refusal.
fn accepted(
    batch: &RecordBatch,
    target: &WriteTarget,
    used: &mut BTreeSet<usize>,
) -> Result<RecordBatch> {
    let last = batch.num_columns() - 1;
    let numbers = batch.column(last).as_primitive::<Int64Type>();
    for row in 0..numbers.len() {
        match usize::try_from(numbers.value(row)) {
            Ok(grant) if numbers.is_valid(row) => {
                used.insert(grant);
            }
            _ => return Err(refused_row(target)),
        }
    }
    batch
        .project(&(0..last).collect::<Vec<_>>())
        .map_err(|e| EngineError::Internal(e.to_string()))
}

fn refused_row(target: &WriteTarget) -> EngineError {
    let access = &target.access;
    EngineError::PermissionDenied(format!(
        "a row written to table '{}' is accepted by none of role '{}''s INSERT grants \
         ({}): a written row must satisfy a grant's check and leave NULL the columns outside \
         the grant's column list; nothing was written",
        access.table,
        access.role,
        access.grant_names().join(", ")
    ))
}

/// `batch` in exactly the types and nullability of the table's files.
pub(crate) fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow::compute::cast(column, field.data_type())
                    .map_err(|e| EngineError::Execution(format!("column '{}': {e}", field.name())))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| EngineError::InvalidSql {
        message: format!("the rows do not fit the table: {e}"),
        position: None,
    })
}
