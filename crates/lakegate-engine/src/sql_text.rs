//! Small helpers to compose SQL text safely from names and checked fragments.

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::ast::{
    Expr, Statement, Value, ValueWithSpan, visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Quotes an identifier for DataFusion SQL (`"a""b"`), so that any name,
/// including keywords and mixed case, round-trips exactly.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a SQL string literal.
pub(crate) fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Checks that `sql` is exactly one SQL expression (not a fragment that could
/// close a parenthesis and continue the surrounding statement), so that it can
/// be embedded in composed SQL as `(sql)`. Uses DataFusion's own parser.
pub fn check_single_expression(sql: &str) -> Result<(), String> {
    let dialect = GenericDialect {};
    DFParser::parse_sql_into_expr_with_dialect(&accept_session_function_parens(sql), &dialect)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The tables an expression's subqueries name, as written (`departments`,
/// `hr.departments`); empty when it does not parse.
pub fn tables_named_in_expression(sql: &str) -> Vec<Vec<String>> {
    let dialect = GenericDialect {};
    let Ok(expr) =
        DFParser::parse_sql_into_expr_with_dialect(&accept_session_function_parens(sql), &dialect)
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let _ = datafusion::sql::sqlparser::ast::visit_relations(&expr, |name| {
        names.push(
            name.0
                .iter()
                .filter_map(|part| part.as_ident().map(|ident| ident.value.clone()))
                .collect(),
        );
        ControlFlow::<()>::Continue(())
    });
    names
}

/// Accepts `current_user()` as well as the SQL standard's `current_user`.
///
/// sqlparser parses `CURRENT_USER` as a niladic keyword and rejects the
/// parentheses, while users (and `current_role()`) write them. The two
/// parenthesis characters are replaced by spaces, found through the
/// tokenizer (never inside a string literal or comment), so that every error
/// position in the text stays exact.
pub fn accept_session_function_parens(sql: &str) -> Cow<'_, str> {
    // Most statements never name the function: skip tokenizing them.
    const NAME: &[u8] = b"current_user";
    if !sql
        .as_bytes()
        .windows(NAME.len())
        .any(|w| w.eq_ignore_ascii_case(NAME))
    {
        return Cow::Borrowed(sql);
    }
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return Cow::Borrowed(sql); // the parser will report the problem
    };
    let significant: Vec<_> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut blanks = Vec::new();
    for window in significant.windows(3) {
        let is_current_user = matches!(&window[0].token, Token::Word(w) if w.keyword == Keyword::CURRENT_USER && w.quote_style.is_none());
        if is_current_user && window[1].token == Token::LParen && window[2].token == Token::RParen {
            blanks.push(window[1].span.start);
            blanks.push(window[2].span.start);
        }
    }
    if blanks.is_empty() {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    for (line_index, line) in sql.split_inclusive('\n').enumerate() {
        for (column_index, ch) in line.chars().enumerate() {
            let here = (line_index as u64 + 1, column_index as u64 + 1);
            if blanks.iter().any(|at| (at.line, at.column) == here) {
                out.push(' ');
            } else {
                out.push(ch);
            }
        }
    }
    Cow::Owned(out)
}

/// Numbers JDBC/ODBC-style `?` placeholders as DataFusion's `$1`, `$2`, ...
/// in the order they appear in the text (by source position), so that
/// clients binding parameters by position work with either style. Mixing
/// `?` with `$n` in one statement is refused: the numbering would be
/// ambiguous.
pub fn number_question_marks(statement: &mut Statement) -> Result<(), String> {
    let mut question_marks: Vec<(u64, u64)> = Vec::new();
    let mut numbered = false;
    let _ = visit_expressions(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(text),
            span,
        }) = expr
        {
            if text == "?" {
                question_marks.push((span.start.line, span.start.column));
            } else {
                numbered = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if question_marks.is_empty() {
        return Ok(());
    }
    if numbered {
        return Err("use either ? or $n placeholders in one statement, not both".into());
    }
    let mut order = question_marks.clone();
    order.sort_unstable();
    order.dedup();
    // Without distinct source positions, the visiting order (the order of
    // the statement's clauses) is the best there is.
    let by_position = order.len() == question_marks.len();
    let mut next = 0;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(text),
            span,
        }) = expr
        {
            let index = if by_position {
                order
                    .binary_search(&(span.start.line, span.start.column))
                    .unwrap_or(next)
            } else {
                next
            };
            next += 1;
            *text = format!("${}", index + 1);
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn single_expression() {
        assert!(check_single_expression("a > 5 AND b IN (SELECT x FROM t)").is_ok());
        assert!(check_single_expression("a > 5) OR (true").is_err());
        assert!(check_single_expression("a > 5; DROP TABLE t").is_err());
        assert!(check_single_expression("").is_err());
        assert!(
            check_single_expression("CASE WHEN current_user() = 'a' THEN b ELSE 'x' END").is_ok()
        );
    }

    #[test]
    fn session_function_parens() {
        assert_eq!(
            accept_session_function_parens("SELECT current_user()"),
            "SELECT current_user  "
        );
        assert_eq!(
            accept_session_function_parens(
                "SELECT 'current_user()', current_user ( )\n, current_role()"
            ),
            "SELECT 'current_user()', current_user    \n, current_role()"
        );
        assert_eq!(
            accept_session_function_parens("SELECT \"current_user\"()"),
            "SELECT \"current_user\"()"
        );
    }

    fn numbered(sql: &str) -> Result<String, String> {
        let dialect = GenericDialect {};
        let mut statements = DFParser::parse_sql_with_dialect(sql, &dialect).unwrap();
        let Some(datafusion::sql::parser::Statement::Statement(mut statement)) =
            statements.pop_front()
        else {
            panic!("not a SQL statement: {sql}");
        };
        number_question_marks(&mut statement)?;
        Ok(statement.to_string())
    }

    #[test]
    fn question_marks_are_numbered_in_text_order() {
        assert_eq!(
            numbered("SELECT ? FROM t WHERE a < ? AND b = ?").unwrap(),
            "SELECT $1 FROM t WHERE a < $2 AND b = $3"
        );
        // A subquery in the projection comes before the outer WHERE.
        assert_eq!(
            numbered("SELECT (SELECT ? FROM u) FROM t WHERE a = ?").unwrap(),
            "SELECT (SELECT $1 FROM u) FROM t WHERE a = $2"
        );
        assert_eq!(numbered("SELECT $1, $2").unwrap(), "SELECT $1, $2");
        assert!(numbered("SELECT ?, $1").unwrap_err().contains("not both"));
    }
}
