//! What GetSqlInfo answers: server identity, read-only-ness, SQL dialect
//! facts, keywords and function lists. BI tools (DBeaver, Superset) ask with
//! an empty id list and expect every info; arrow-flight's `SqlInfoData`
//! answers an empty list with all of them.

use arrow_flight::sql::SqlInfo;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use lakegate_engine::{Engine, sql_keywords};

/// The infos Lakegate reports.
pub fn sql_info_data(engine: &Engine) -> SqlInfoData {
    let functions = engine.scalar_functions_by_section();
    let section = |label: &str| functions.get(label).cloned().unwrap_or_default();
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "Lakegate");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    // Lakegate runs read-only statements only.
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlSearchStringEscape, "\\");
    let keywords: Vec<String> = sql_keywords().iter().map(|k| k.to_string()).collect();
    builder.append(SqlInfo::SqlKeywords, keywords);
    builder.append(SqlInfo::SqlNumericFunctions, section("Math Functions"));
    builder.append(SqlInfo::SqlStringFunctions, section("String Functions"));
    builder.append(
        SqlInfo::SqlDatetimeFunctions,
        section("Time and Date Functions"),
    );
    builder.append(
        SqlInfo::SqlSystemFunctions,
        vec!["current_user".to_string(), "current_role".to_string()],
    );
    builder.build().expect("the fixed set of infos builds")
}
