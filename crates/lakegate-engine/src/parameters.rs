//! Query parameters: the placeholders of a prepared statement (`$1`, `$2`, or
//! named `$region`) and the values a client binds to them.
//!
//! Placeholders live in the caller's SQL only, so they are replaced before
//! DataFusion plans the query physically: each secured table is scanned with
//! literals, behind the same policy barrier as any other query. Values arrive
//! as one row of an Arrow record batch (what Flight SQL clients send):
//!
//! * positional placeholders (`$1`, `$2`, ...) take the row's columns in order;
//! * named placeholders (`$region`) take the column of the same name (with or
//!   without the leading `$`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;

use crate::error::{EngineError, Result};

/// The placeholders of `plan`, ordered: positional ones by number, then
/// named ones by name.
fn placeholders(plan: &LogicalPlan) -> Result<Vec<(String, Option<DataType>)>> {
    let mut found: Vec<(String, Option<DataType>)> = plan
        .get_parameter_types()
        .map_err(EngineError::from_planning)?
        .into_iter()
        .collect();
    found.sort_by(|(a, _), (b, _)| match (position_of(a), position_of(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    Ok(found)
}

/// `3` for `$3`; `None` for a named placeholder.
fn position_of(id: &str) -> Option<usize> {
    id.strip_prefix('$')?.parse().ok()
}

/// The parameter schema of a planned statement.
pub(crate) fn parameter_schema(plan: &LogicalPlan) -> Result<SchemaRef> {
    let fields: Vec<Field> = placeholders(plan)?
        .into_iter()
        .map(|(id, data_type)| Field::new(id, data_type.unwrap_or(DataType::Null), true))
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// The values of row `row` of `batch` for the placeholders of `plan`.
pub(crate) fn parameter_values(
    plan: &LogicalPlan,
    batch: &RecordBatch,
    row: usize,
) -> Result<ParamValues> {
    let wanted = placeholders(plan)?;
    let value = |column: usize| -> Result<ScalarValue> {
        ScalarValue::try_from_array(batch.column(column), row).map_err(|e| {
            EngineError::InvalidSql {
                message: format!("cannot read parameter {}: {e}", column + 1),
                position: None,
            }
        })
    };
    let positional = wanted.iter().all(|(id, _)| position_of(id).is_some());
    if positional {
        let count = wanted
            .iter()
            .filter_map(|(id, _)| position_of(id))
            .max()
            .unwrap_or(0);
        if batch.num_columns() != count {
            return Err(EngineError::InvalidSql {
                message: format!(
                    "the statement takes {count} parameter(s), {} were bound",
                    batch.num_columns()
                ),
                position: None,
            });
        }
        let values = (0..count).map(value).collect::<Result<Vec<_>>>()?;
        return Ok(ParamValues::from(values));
    }
    let schema = batch.schema();
    let mut values = HashMap::new();
    for (id, _) in &wanted {
        let name = id.trim_start_matches('$');
        let column = schema
            .fields()
            .iter()
            .position(|f| f.name().trim_start_matches('$') == name)
            .ok_or_else(|| EngineError::InvalidSql {
                message: format!("no value was bound for parameter {id}"),
                position: None,
            })?;
        values.insert(name.to_string(), value(column)?.into());
    }
    Ok(ParamValues::Map(values))
}
