//! Parsing the caller's SQL: exactly one statement, no longer than the
//! engine accepts, its long chains regrouped and its size checked (see
//! `statement_shape.rs`), its `?` placeholders numbered.

use datafusion::common::DataFusionError;
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::ParserError;

use crate::error::{EngineError, Result, SqlPosition};
use crate::sql_text::{accept_session_function_parens, number_question_marks};
use crate::statement_shape::{PARSER_RECURSION_LIMIT, PastLimit, regroup_and_check};

/// The default [`crate::EngineOptions::max_statement_bytes`]: 8 MiB, room
/// for a 1,000,000-value `IN` list or a 300,000-term `OR` chain. Planning
/// holds every part of a statement several times over (its syntax tree,
/// logical, optimized and physical plans): a statement of this size can
/// take a gigabyte or more while it is planned.
pub const DEFAULT_MAX_STATEMENT_BYTES: usize = 8 * 1024 * 1024;

/// Parses exactly one statement of at most `max_bytes` bytes. The length is
/// checked before anything reads the text.
pub(crate) fn parse_one(sql: &str, max_bytes: usize) -> Result<DFStatement> {
    if sql.len() > max_bytes {
        return Err(EngineError::InvalidSql {
            message: format!(
                "the statement is {} bytes long, more than the {max_bytes} bytes Lakegate accepts",
                sql.len()
            ),
            position: None,
        });
    }
    let dialect = GenericDialect {};
    let sql = accept_session_function_parens(sql);
    let parsed = DFParserBuilder::new(sql.as_ref())
        .with_dialect(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .build()
        .and_then(|mut parser| parser.parse_statements());
    let mut statements = parsed.map_err(|e| {
        if matches!(e.find_root(), DataFusionError::SQL(error, _)
            if matches!(**error, ParserError::RecursionLimitExceeded))
        {
            return PastLimit::Nesting.error();
        }
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
            regroup_and_check(&mut statement)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_longer_than_allowed_is_refused_unread() {
        let error = parse_one("SELECT 1 -- padding", 10).unwrap_err();
        assert!(
            error.to_string().contains("more than the 10 bytes"),
            "{error}"
        );
        assert!(parse_one("SELECT 1", 10).is_ok());
    }

    #[test]
    fn nesting_past_the_limit_is_refused_naming_it() {
        let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
        let error = parse_one(&deep, usize::MAX).unwrap_err();
        assert!(error.to_string().contains("256 levels"), "{error}");
    }
}
