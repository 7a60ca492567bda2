//! Small helpers to compose SQL text safely from names and checked fragments.

use std::borrow::Cow;

use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Quotes an identifier for DataFusion SQL (`"a""b"`), so that any name,
/// including keywords and mixed case, round-trips exactly.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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

/// Accepts `current_user()` as well as the SQL standard's `current_user`.
///
/// sqlparser parses `CURRENT_USER` as a niladic keyword and rejects the
/// parentheses, while users (and `current_role()`) write them. The two
/// parenthesis characters are replaced by spaces, found through the
/// tokenizer (never inside a string literal or comment), so that every error
/// position in the text stays exact.
pub fn accept_session_function_parens(sql: &str) -> Cow<'_, str> {
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
}
