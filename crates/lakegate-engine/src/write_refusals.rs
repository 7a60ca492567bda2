//! Statements that write data (`INSERT INTO`, `CREATE TABLE ... AS`):
//! refused, each naming the privilege it needs and whether the session's
//! role holds it. The SQL gate refuses every other writing statement by
//! kind. Lakegate does not run writes yet, so a role holding the privilege
//! is told that, not sent to look for a grant it already has.

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement, TableObject};
use lakegate_policy::TableName;

use crate::error::EngineError;
use crate::lake::Lake;

/// The refusal of `statement` when it writes data, else `None` (the gate
/// decides the rest).
pub(crate) fn write_refusal(
    statement: &DFStatement,
    lake: &Lake,
    role: &str,
    current_database: Option<&str>,
) -> Option<EngineError> {
    let DFStatement::Statement(inner) = statement else {
        return None;
    };
    let refusal = match inner.as_ref() {
        Statement::Insert(insert) => {
            let TableObject::TableName(name) = &insert.table else {
                return Some(refused("INSERT INTO a table function"));
            };
            table_name(name, current_database).map(|table| insert_refusal(lake, role, &table))
        }
        Statement::CreateTable(create) if create.query.is_some() => {
            table_name(&create.name, current_database)
                .map(|table| create_refusal(lake, role, &table.database))
        }
        _ => return None,
    };
    Some(refusal.unwrap_or_else(|error| error))
}

/// The refusal of bulk ingestion (Flight SQL's `CommandStatementIngest`)
/// into `table` of `database` (or the current database): appending needs
/// INSERT on the table, creating it CREATE_TABLE on the database.
pub(crate) fn ingest_refusal(
    lake: &Lake,
    role: &str,
    current_database: Option<&str>,
    database: Option<&str>,
    table: &str,
    creates: bool,
) -> EngineError {
    let Some(database) = database.or(current_database) else {
        return EngineError::InvalidSql {
            message: format!(
                "name the database of ingested table '{table}', or run USE <database> first"
            ),
            position: None,
        };
    };
    if creates {
        create_refusal(lake, role, database)
    } else {
        insert_refusal(lake, role, &TableName::new(database, table))
    }
}

/// INSERT into `table`: whether the role holds it or not, refused.
fn insert_refusal(lake: &Lake, role: &str, table: &TableName) -> EngineError {
    match lake.write_access_of(role, table) {
        Some(access) => not_yet(
            role,
            &format!(
                "INSERT on table '{table}' (grant {})",
                access.grant_names().join(", ")
            ),
        ),
        // A table the role may not write and a table that does not exist
        // get the same answer.
        None => EngineError::PermissionDenied(format!(
            "table '{table}' does not exist or role '{role}' may not insert into it: that \
             needs INSERT on it"
        )),
    }
}

/// A table created in `database`: whether the role holds CREATE_TABLE or
/// not, refused.
fn create_refusal(lake: &Lake, role: &str, database: &str) -> EngineError {
    if lake.catalog().policy.may_create_table(role, database) {
        not_yet(role, &format!("CREATE_TABLE on database '{database}'"))
    } else {
        EngineError::PermissionDenied(format!(
            "database '{database}' does not exist or role '{role}' may not create tables in \
             it: that needs CREATE_TABLE on it"
        ))
    }
}

fn not_yet(role: &str, held: &str) -> EngineError {
    EngineError::PermissionDenied(format!(
        "role '{role}' holds {held}, but Lakegate does not run writes yet: INSERT, CREATE \
         TABLE AS and bulk ingest are refused for every role"
    ))
}

fn refused(kind: &str) -> EngineError {
    EngineError::StatementRefused {
        statement: kind.to_string(),
    }
}

/// `db.t`, or `t` in the current database, as DataFusion reads names
/// (unquoted parts lower-cased, quoted ones as written).
fn table_name(name: &ObjectName, current_database: Option<&str>) -> Result<TableName, EngineError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|part| part.as_ident())
        .map(|ident| match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_lowercase(),
        })
        .collect();
    match (parts.as_slice(), current_database) {
        ([database, table], _) => Ok(TableName::new(database, table)),
        ([table], Some(database)) => Ok(TableName::new(database, table)),
        _ => Err(EngineError::InvalidSql {
            message: format!(
                "name the table as database.table, or run USE <database> first: '{name}'"
            ),
            position: None,
        }),
    }
}
