//! Small helpers to compose SQL text safely from names and checked fragments.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Quotes an identifier for DataFusion SQL (`"a""b"`), so that any name,
/// including keywords and mixed case, round-trips exactly.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks that `sql` is exactly one SQL expression (not a fragment that could
/// close a parenthesis and continue the surrounding statement), so that it can
/// be embedded in composed SQL as `(sql)`.
pub fn check_single_expression(sql: &str) -> Result<(), String> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| e.to_string())?;
    parser.parse_expr().map_err(|e| e.to_string())?;
    let next = parser.peek_token();
    if next.token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(format!("unexpected '{}' after the expression", next.token));
    }
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
    }
}
