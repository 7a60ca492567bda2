//! The refusals of writing statements Lakegate does not run, or not on the
//! path they came by: `CREATE TABLE ... AS` and bulk ingestion that creates
//! a table where no policy store can declare it (each naming the privilege
//! it needs and whether the role holds it), and an `INSERT` planned as a
//! query (it runs as an update). The SQL gate refuses every other writing
//! statement by kind.

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement};
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
        Statement::Insert(_) => Ok(EngineError::InvalidSql {
            message: "INSERT writes rows and returns none: send it as an update (ADBC \
                      execute_update, JDBC executeUpdate, Flight SQL CommandStatementUpdate)"
                .into(),
            position: None,
        }),
        Statement::CreateTable(create) if create.query.is_some() => {
            table_name(&create.name, current_database)
                .map(|table| create_refusal(lake, role, &table.database))
        }
        _ => return None,
    };
    Some(refusal.unwrap_or_else(|error| error))
}

/// A table created in `database` (`CREATE TABLE AS`, bulk ingestion in
/// mode create) where it cannot be declared: refused as lacking
/// CREATE_TABLE, or, when the role holds it, as needing a policy store
/// (the path that runs it checks the privilege with this refusal too).
pub(crate) fn create_refusal(lake: &Lake, role: &str, database: &str) -> EngineError {
    if lake.catalog().may_create_table(role, database) {
        EngineError::PermissionDenied(format!(
            "role '{role}' holds CREATE_TABLE on database '{database}', but a created table is \
             declared in the policy store, and this server serves a declarative catalog: start \
             it with --store to create tables (INSERT and ingestion in mode append run)"
        ))
    } else {
        EngineError::PermissionDenied(format!(
            "database '{database}' does not exist or role '{role}' may not create tables in \
             it: that needs CREATE_TABLE on it"
        ))
    }
}

/// The database of an ingested `table`: the one named, else the current one.
pub(crate) fn ingested_database<'a>(
    database: Option<&'a str>,
    current_database: Option<&'a str>,
    table: &str,
) -> Result<&'a str, EngineError> {
    database
        .or(current_database)
        .ok_or_else(|| EngineError::InvalidSql {
            message: format!(
                "name the database of ingested table '{table}', or run USE <database> first"
            ),
            position: None,
        })
}

/// `db.t`, or `t` in the current database, as DataFusion reads names
/// (unquoted parts lower-cased, quoted ones as written).
pub(crate) fn table_name(
    name: &ObjectName,
    current_database: Option<&str>,
) -> Result<TableName, EngineError> {
    match (object_name_parts(name).as_slice(), current_database) {
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

/// The parts of `name` as DataFusion reads them (unquoted lower-cased).
pub(crate) fn object_name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|part| part.as_ident())
        .map(|ident| match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_lowercase(),
        })
        .collect()
}
