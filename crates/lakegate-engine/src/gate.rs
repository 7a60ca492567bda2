//! The SQL gate: which statements may run at all.
//!
//! Only read-only statements pass: queries (SELECT, WITH, VALUES), EXPLAIN of a
//! query, SHOW DATABASES/SCHEMAS, SHOW TABLES, SHOW COLUMNS, DESCRIBE and USE.
//! Everything else is refused by name before DataFusion plans it, in
//! particular whatever touches files or settings (CREATE EXTERNAL TABLE, COPY,
//! SET, RESET, ...) or would create objects (CREATE, INSERT, SELECT INTO).

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, SetExpr, Statement, Use};

use crate::error::{EngineError, Result};

/// A statement admitted through the gate.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// Planned and run by DataFusion over the role's secured catalog
    /// (queries, SHOW TABLES, SHOW COLUMNS, DESCRIBE).
    Plan(DFStatement),
    /// Answered by the session itself.
    Session(SessionStatement),
}

/// A statement the session answers itself rather than DataFusion.
#[derive(Debug)]
pub(crate) enum SessionStatement {
    /// EXPLAIN of an admitted query.
    Explain {
        /// The whole EXPLAIN statement.
        statement: Box<DFStatement>,
        /// The explained statement.
        inner: Box<DFStatement>,
        /// EXPLAIN ANALYZE (runs the query).
        analyze: bool,
    },
    /// SHOW DATABASES / SHOW SCHEMAS.
    ShowDatabases,
    /// USE db.
    Use(String),
}

/// Admits `statement` or refuses it with an error naming its kind.
pub(crate) fn admit(statement: DFStatement) -> Result<Admitted> {
    match &statement {
        DFStatement::Statement(inner) => match inner.as_ref() {
            Statement::Query(query) => {
                if query_writes(query) {
                    return Err(refused("SELECT INTO"));
                }
                Ok(Admitted::Plan(statement))
            }
            Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ExplainTable { .. } => Ok(Admitted::Plan(statement)),
            Statement::ShowDatabases { .. } | Statement::ShowSchemas { .. } => {
                Ok(Admitted::Session(SessionStatement::ShowDatabases))
            }
            Statement::Use(target) => match target {
                Use::Object(name) | Use::Database(name) | Use::Schema(name) => {
                    Ok(Admitted::Session(SessionStatement::Use(single_name(name)?)))
                }
                _ => Err(refused(&format!("{target}").to_uppercase())),
            },
            Statement::Explain { .. } => Err(EngineError::InvalidSql {
                message:
                    "this EXPLAIN form is not supported; use EXPLAIN [ANALYZE] [VERBOSE] <query>"
                        .into(),
                position: None,
            }),
            other => Err(refused(&statement_kind(other))),
        },
        DFStatement::Explain(explain) => {
            let inner = (*explain.statement).clone();
            let analyze = explain.options.analyze;
            match admit(inner.clone())? {
                Admitted::Plan(_) => Ok(Admitted::Session(SessionStatement::Explain {
                    statement: Box::new(statement),
                    inner: Box::new(inner),
                    analyze,
                })),
                _ => Err(EngineError::InvalidSql {
                    message: "EXPLAIN is only available for queries".into(),
                    position: None,
                }),
            }
        }
        DFStatement::CreateExternalTable(_) => Err(refused("CREATE EXTERNAL TABLE")),
        DFStatement::CopyTo(_) => Err(refused("COPY")),
        DFStatement::Reset(_) => Err(refused("RESET")),
    }
}

fn refused(kind: &str) -> EngineError {
    EngineError::StatementRefused {
        statement: kind.to_string(),
    }
}

/// A database name in USE: one identifier, as written (quoted names keep
/// their case, unquoted ones are lower-cased like every other identifier).
fn single_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|ident| {
            if ident.quote_style.is_some() {
                ident.value.clone()
            } else {
                ident.value.to_lowercase()
            }
        })
        .collect();
    match parts.as_slice() {
        [db] => Ok(db.clone()),
        _ => Err(EngineError::InvalidSql {
            message: format!("USE takes one database name, not '{name}'"),
            position: None,
        }),
    }
}

/// Whether a query creates a table (`SELECT ... INTO t`), anywhere in it.
fn query_writes(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    fn set_expr_writes(body: &SetExpr) -> bool {
        match body {
            SetExpr::Select(select) => select.into.is_some(),
            SetExpr::Query(query) => query_writes(query),
            SetExpr::SetOperation { left, right, .. } => {
                set_expr_writes(left) || set_expr_writes(right)
            }
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                true
            }
            SetExpr::Values(_) | SetExpr::Table(_) => false,
        }
    }
    let in_ctes = query
        .with
        .as_ref()
        .is_some_and(|with| with.cte_tables.iter().any(|cte| query_writes(&cte.query)));
    in_ctes || set_expr_writes(&query.body)
}

/// A readable name for a refused statement: its leading keywords.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    const TWO_WORDS: [&str; 8] = [
        "CREATE", "DROP", "ALTER", "SHOW", "DELETE", "TRUNCATE", "INSERT", "GRANT",
    ];
    let first = words.first().map(|w| w.to_uppercase()).unwrap_or_default();
    let mut kind = vec![first.clone()];
    // SHOW is allowed in some forms: name the one refused (`SHOW ALL`).
    if first == "SHOW"
        && let Some(what) = words.get(1)
    {
        return format!("SHOW {}", what.to_uppercase());
    }
    if TWO_WORDS.contains(&first.as_str()) {
        for word in words.iter().skip(1).take(3) {
            let upper = word.to_uppercase();
            let is_keyword = matches!(
                upper.as_str(),
                "TABLE"
                    | "VIEW"
                    | "SCHEMA"
                    | "DATABASE"
                    | "INDEX"
                    | "FUNCTION"
                    | "EXTERNAL"
                    | "OR"
                    | "REPLACE"
                    | "TEMPORARY"
                    | "TEMP"
                    | "MATERIALIZED"
                    | "INTO"
                    | "FROM"
                    | "ROLE"
                    | "USER"
                    | "CATALOG"
                    | "UNIQUE"
                    | "FUNCTIONS"
            );
            if !is_keyword {
                break;
            }
            if upper == "INTO" || upper == "FROM" {
                break;
            }
            kind.push(upper);
        }
    }
    kind.join(" ")
}
