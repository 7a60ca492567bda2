//! Tag expressions as written: `domain = 'sales' AND NOT pii IN ('email',
//! 'phone') OR pii IS NULL`, parsed by sqlparser (the SQL parser DataFusion
//! uses) as a SQL expression and then narrowed to what a tag expression
//! may say:
//!
//! ```text
//! key = 'value'   key <> 'value'   key [NOT] IN ('a', 'b')   key IS [NOT] NULL
//! NOT e   e AND e   e OR e   (e)   TRUE   FALSE
//! ```
//!
//! `Display` writes an expression back in the same syntax, so that what
//! `SHOW GRANTS` prints parses to an expression that matches the same tags.
//!
//! Anything else (a column reference on the right, a number, a function, a
//! subquery) is refused, naming what is allowed. Input longer than
//! [`MAX_TAG_EXPR_BYTES`] is refused before parsing, and sqlparser's
//! recursion limit bounds nesting, so no expression can exhaust the stack.

use std::fmt;

use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::tags::TagExpr;

/// The longest tag expression accepted, in bytes.
pub const MAX_TAG_EXPR_BYTES: usize = 16 * 1024;

/// How deeply a tag expression may nest.
const RECURSION_LIMIT: usize = 64;

/// Why a tag expression could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag expression: {0}")]
pub struct TagSyntaxError(String);

const ALLOWED: &str = "key = 'value', key <> 'value', key [NOT] IN ('a', ...), \
                       key IS [NOT] NULL, TRUE, FALSE, NOT, AND, OR and parentheses";

impl std::str::FromStr for TagExpr {
    type Err = TagSyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > MAX_TAG_EXPR_BYTES {
            return Err(TagSyntaxError(format!(
                "{} bytes, longer than the {MAX_TAG_EXPR_BYTES} accepted",
                text.len()
            )));
        }
        let error = |e: sqlparser::parser::ParserError| TagSyntaxError(e.to_string());
        let mut parser = Parser::new(&GenericDialect)
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(text)
            .map_err(error)?;
        let expr = parser.parse_expr().map_err(error)?;
        parser.expect_token(&Token::EOF).map_err(error)?;
        convert(&expr)
    }
}

/// The tag expression `expr` says, if it is one.
fn convert(expr: &Expr) -> Result<TagExpr, TagSyntaxError> {
    Ok(match expr {
        Expr::Nested(inner) => convert(inner)?,
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => TagExpr::Not(Box::new(convert(expr)?)),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => TagExpr::And(operands(op, expr)?),
            BinaryOperator::Or => TagExpr::Or(operands(op, expr)?),
            BinaryOperator::Eq | BinaryOperator::NotEq => {
                let equals = TagExpr::Equals {
                    key: key(left)?,
                    value: value(right)?,
                };
                match op {
                    BinaryOperator::Eq => equals,
                    _ => TagExpr::Not(Box::new(equals)),
                }
            }
            other => return Err(unsupported(&format!("the operator {other}"))),
        },
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let within = TagExpr::In {
                key: key(expr)?,
                values: list.iter().map(value).collect::<Result<_, _>>()?,
            };
            if *negated {
                TagExpr::Not(Box::new(within))
            } else {
                within
            }
        }
        Expr::IsNull(expr) => TagExpr::Untagged(key(expr)?),
        Expr::Value(literal) if matches!(literal.value, Value::Boolean(_)) => match literal.value {
            Value::Boolean(true) => TagExpr::And(Vec::new()),
            _ => TagExpr::Or(Vec::new()),
        },
        Expr::IsNotNull(expr) => TagExpr::Not(Box::new(TagExpr::Untagged(key(expr)?))),
        other => return Err(unsupported(&format!("'{other}'"))),
    })
}

/// Every operand of a chain of `op` (AND or OR) beneath `expr`, in order,
/// converted. Walked with a stack of its own, not by recursion: a chain of
/// a thousand ANDs is a thousand levels deep as sqlparser builds it.
fn operands(op: &BinaryOperator, expr: &Expr) -> Result<Vec<TagExpr>, TagSyntaxError> {
    let mut operands = Vec::new();
    let mut pending = vec![expr];
    while let Some(next) = pending.pop() {
        match next {
            Expr::BinaryOp {
                left,
                op: inner,
                right,
            } if inner == op => {
                pending.push(right);
                pending.push(left);
            }
            Expr::Nested(inner) => pending.push(inner),
            other => operands.push(convert(other)?),
        }
    }
    Ok(operands)
}

/// A tag key: a bare or quoted identifier.
fn key(expr: &Expr) -> Result<String, TagSyntaxError> {
    match expr {
        Expr::Identifier(ident) => Ok(ident.value.clone()),
        other => Err(unsupported(&format!(
            "'{other}' where a tag key belongs (a name, such as pii)"
        ))),
    }
}

/// A tag value: a single-quoted string.
fn value(expr: &Expr) -> Result<String, TagSyntaxError> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) => Ok(text.clone()),
            other => Err(unsupported(&format!(
                "{other} where a tag value belongs (a quoted string, such as 'email')"
            ))),
        },
        other => Err(unsupported(&format!(
            "'{other}' where a tag value belongs (a quoted string, such as 'email')"
        ))),
    }
}

impl fmt::Display for TagExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, Precedence::Or)
    }
}

/// How tightly an operator binds, loosest first: a sub-expression is
/// parenthesised when it binds more loosely than where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    Or,
    And,
    Not,
}

fn write_expr(f: &mut fmt::Formatter<'_>, expr: &TagExpr, context: Precedence) -> fmt::Result {
    let own = match expr {
        TagExpr::Or(items) if items.len() > 1 => Precedence::Or,
        TagExpr::And(items) if items.len() > 1 => Precedence::And,
        _ => Precedence::Not,
    };
    if own < context {
        f.write_str("(")?;
    }
    match expr {
        TagExpr::Equals { key, value } => write!(f, "{} = {}", Key(key), Literal(value))?,
        // `key IN ()` does not parse; no value matches, as with FALSE.
        TagExpr::In { values, .. } if values.is_empty() => f.write_str("FALSE")?,
        TagExpr::In { key, values } => {
            write!(f, "{} IN (", Key(key))?;
            for (i, value) in values.iter().enumerate() {
                let separator = if i == 0 { "" } else { ", " };
                write!(f, "{separator}{}", Literal(value))?;
            }
            f.write_str(")")?;
        }
        TagExpr::Untagged(key) => write!(f, "{} IS NULL", Key(key))?,
        TagExpr::Not(inner) => {
            f.write_str("NOT ")?;
            write_expr(f, inner, Precedence::Not)?;
        }
        TagExpr::And(items) | TagExpr::Or(items) => {
            let (word, empty) = match expr {
                TagExpr::And(_) => (" AND ", "TRUE"),
                _ => (" OR ", "FALSE"),
            };
            if items.is_empty() {
                f.write_str(empty)?;
            }
            // A one-item chain is its item, standing where the chain stands;
            // a longer chain's items are written at the chain's precedence.
            let inner = if items.len() == 1 { context } else { own };
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(word)?;
                }
                write_expr(f, item, inner)?;
            }
        }
    }
    if own < context {
        f.write_str(")")?;
    }
    Ok(())
}

/// A tag key as written: bare when it is a plain lower-case name that is
/// no keyword, else double-quoted.
struct Key<'a>(&'a str);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self
            .0
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && self
                .0
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !matches!(
                self.0,
                "and" | "or" | "not" | "in" | "is" | "null" | "true" | "false"
            );
        if plain {
            f.write_str(self.0)
        } else {
            write!(f, "\"{}\"", self.0.replace('"', "\"\""))
        }
    }
}

/// A tag value as written: single-quoted.
struct Literal<'a>(&'a str);

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\'', "''"))
    }
}

fn unsupported(what: &str) -> TagSyntaxError {
    TagSyntaxError(format!(
        "{what} is not allowed; a tag expression uses {ALLOWED}"
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn parse(text: &str) -> TagExpr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn eq(key: &str, value: &str) -> TagExpr {
        TagExpr::Equals {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn reads_every_form() {
        assert_eq!(
            parse("domain = 'sales' AND NOT pii IN ('email', 'phone')"),
            TagExpr::And(vec![
                eq("domain", "sales"),
                TagExpr::Not(Box::new(TagExpr::In {
                    key: "pii".into(),
                    values: BTreeSet::from(["email".into(), "phone".into()]),
                })),
            ])
        );
        assert_eq!(
            parse("a = 'x' OR b = 'y' OR (c IS NULL)"),
            TagExpr::Or(vec![
                eq("a", "x"),
                eq("b", "y"),
                TagExpr::Untagged("c".into())
            ])
        );
        assert_eq!(parse("a <> 'x'"), TagExpr::Not(Box::new(eq("a", "x"))));
        assert_eq!(parse("pii NOT IN ('email')"), parse("NOT pii IN ('email')"));
        assert_eq!(
            parse("pii IS NOT NULL"),
            TagExpr::Not(Box::new(TagExpr::Untagged("pii".into())))
        );
        assert_eq!(parse("\"Cost Center\" = 'r&d'"), eq("Cost Center", "r&d"));
    }

    #[test]
    fn refuses_what_is_not_a_tag_expression_with_a_clear_error() {
        for (text, expected) in [
            ("pii = email", "where a tag value belongs"),
            ("'email' = pii", "where a tag key belongs"),
            ("pii = 1", "where a tag value belongs"),
            ("pii > 'a'", "the operator >"),
            ("lower(pii) = 'a'", "where a tag key belongs"),
            ("pii IN (SELECT 1)", "is not allowed"),
            ("pii = 'a' extra", "Expected: EOF, found: extra"),
            ("", "Expected"),
        ] {
            let error = text.parse::<TagExpr>().unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn deep_or_long_input_is_refused_not_a_crash() {
        let deep = format!("{}a = 'x'{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(deep.parse::<TagExpr>().is_err());
        let long = vec!["a = 'x'"; 5_000].join(" AND ");
        let error = long.parse::<TagExpr>().unwrap_err().to_string();
        assert!(error.contains("longer than"), "{error}");
        // Within the limit, a long chain is one flat AND.
        let chain = vec!["a = 'x'"; 1_000].join(" AND ");
        match chain.parse::<TagExpr>().unwrap() {
            TagExpr::And(items) => assert_eq!(items.len(), 1_000),
            other => panic!("{other:?}"),
        }
    }
}
