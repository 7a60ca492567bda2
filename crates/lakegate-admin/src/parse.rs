//! The administration statements' parser: which texts are administration
//! statements, their tokens (sqlparser's tokenizer) handed to the grammar
//! (`grammar.rs`: Lakegate's forms for the statements SQL has no standard
//! form of, such as `CREATE LOCATION`, `GRANT ... MASK ... WHERE`, `SHOW
//! EFFECTIVE ACCESS`), and the redaction of passwords from statement text.
//!
//! [`parse_admin`] says first whether a text is an administration statement
//! at all (by its leading words), so that queries, `SHOW TABLES` and the
//! like go on to the engine untouched.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::AdminError;
use crate::grammar::{is_word, parse_statement};
use crate::statement::AdminStatement;

/// The leading words of every administration statement. `SHOW TABLES`,
/// `SHOW COLUMNS` and the other `SHOW`s DataFusion answers are not among
/// them, nor `CREATE TABLE` / `CREATE VIEW` (refused by the engine).
const LEADS: &[&[&str]] = &[
    &["CREATE", "LOCATION"],
    &["CREATE", "DATABASE"],
    &["CREATE", "EXTERNAL", "TABLE"],
    &["CREATE", "ROLE"],
    &["CREATE", "USER"],
    &["CREATE", "GROUP"],
    &["DROP", "LOCATION"],
    &["DROP", "DATABASE"],
    &["DROP", "TABLE"],
    &["DROP", "ROLE"],
    &["DROP", "USER"],
    &["DROP", "GROUP"],
    &["ALTER", "CATALOG"],
    &["ALTER", "USER"],
    &["ALTER", "GROUP"],
    &["GRANT"],
    &["REVOKE"],
    &["SHOW", "GRANTS"],
    &["SHOW", "ROLES"],
    &["SHOW", "USERS"],
    &["SHOW", "GROUPS"],
    &["SHOW", "LOCATIONS"],
    &["SHOW", "EFFECTIVE"],
    &["CREATE", "TAG"],
    &["DROP", "TAG"],
    &["DROP", "MASK"],
    &["DROP", "ROW", "FILTER"],
    &["ALTER", "DATABASE"],
    &["ALTER", "TABLE"],
    &["MASK", "COLUMNS"],
    &["ROW", "FILTER"],
    &["SHOW", "TAGS"],
];

/// The statement `sql` holds, if it is an administration statement:
/// `None` when it is not (a query, for the engine), `Some(Err)` when it is
/// one but malformed, with the position of the mistake.
pub fn parse_admin(sql: &str) -> Option<Result<AdminStatement, AdminError>> {
    let words = leading_words(sql, 3);
    let is_admin = LEADS
        .iter()
        .any(|lead| lead.len() <= words.len() && lead.iter().zip(&words).all(|(a, b)| a == b));
    if !is_admin {
        return None;
    }
    Some(tokens(sql).and_then(|tokens| parse_statement(sql, tokens)))
}

/// The first `count` words of `sql`, upper-cased, past whitespace and
/// comments: read without tokenizing the whole text (a query may be
/// megabytes long).
fn leading_words(sql: &str, count: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = sql;
    while words.len() < count {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            words.push(rest[..end].to_ascii_uppercase());
            rest = &rest[end..];
        }
    }
    words
}

/// `sql`'s tokens, with their positions.
fn tokens(sql: &str) -> Result<Vec<TokenWithSpan>, AdminError> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| AdminError::invalid_from(e.to_string()))
}

/// `sql` as the audit log and the server log may show it: in a statement
/// that gives a password, every quoted string replaced by `'***'` (a
/// malformed one may hold the password anywhere). A text that cannot be
/// tokenized is not shown at all (it might hold a password the tokenizer
/// did not reach).
pub fn redacted(sql: &str) -> String {
    let Ok(tokens) = tokens(sql) else {
        return "(not shown: the statement could not be read)".into();
    };
    if !tokens.iter().any(|t| is_word(&t.token, "PASSWORD")) {
        return sql.to_string();
    }
    tokens
        .iter()
        .map(|token| match &token.token {
            Token::Word(word) if word.quote_style.is_some() => "'***'".to_string(),
            Token::Word(_) | Token::Whitespace(_) | Token::Number(..) | Token::EOF => {
                token.token.to_string()
            }
            Token::Period
            | Token::Comma
            | Token::SemiColon
            | Token::LParen
            | Token::RParen
            | Token::Eq => token.token.to_string(),
            _ => "'***'".to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use lakegate_engine::SqlPosition;
    use lakegate_policy::{Privilege, TableName};

    use super::*;
    use crate::statement::{Columns, MaskSpec, Target};

    fn parse(sql: &str) -> AdminStatement {
        parse_admin(sql)
            .expect("an administration statement")
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn queries_and_datafusion_shows_are_not_administration() {
        for sql in [
            "SELECT 1",
            "SHOW TABLES",
            "show columns from t",
            "CREATE TABLE t AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "DROP VIEW v",
            "WITH grant AS (SELECT 1) SELECT * FROM grant",
        ] {
            assert!(parse_admin(sql).is_none(), "{sql}");
        }
    }

    #[test]
    fn grant_with_every_clause() {
        let statement = parse(
            "GRANT SELECT ON TABLE tpc.customer TO ROLE marketing \
             EXCLUDING COLUMNS (c_first_name, c_last_name) \
             MASK c_email USING hash, c_phone USING (substr(c_phone, 1, 3)) \
             WHERE c_birth_country IN (SELECT country FROM tpc.allowed) AND c_id > 10 \
             AS marketing_customer WITH GRANT OPTION",
        );
        let AdminStatement::Grant(grant) = statement else {
            panic!("a grant")
        };
        assert_eq!(grant.privileges, vec![Privilege::Select]);
        assert_eq!(
            grant.target,
            Target::Table(TableName::new("tpc", "customer"))
        );
        assert_eq!(grant.role, "marketing");
        assert_eq!(
            grant.columns,
            Columns::Excluding(vec!["c_first_name".into(), "c_last_name".into()])
        );
        assert_eq!(
            grant.masks,
            vec![
                ("c_email".into(), MaskSpec::Builtin("hash".into())),
                (
                    "c_phone".into(),
                    MaskSpec::Expression("substr(c_phone, 1, 3)".into())
                ),
            ]
        );
        assert_eq!(
            grant.row_filter.as_deref(),
            Some("c_birth_country IN (SELECT country FROM tpc.allowed) AND c_id > 10")
        );
        assert_eq!(grant.name.as_deref(), Some("marketing_customer"));
        assert!(grant.grantable);
    }

    #[test]
    fn every_form_parses() {
        let cases = [
            "CREATE LOCATION lake URL 'file:///data/' WITH (region = 'eu-west-1', max_retries = 3, allow_http = true)",
            "CREATE DATABASE tpc COMMENT 'TPC-DS'",
            "ALTER CATALOG SET DEFAULT DATABASE tpc",
            "CREATE EXTERNAL TABLE tpc.t STORED AS PARQUET LOCATION 'file:///data/t/' PARTITIONED BY (year int)",
            "CREATE EXTERNAL TABLE tpc.d STORED AS DELTA LOCATION 'file:///data/d/'",
            "DROP TABLE tpc.t",
            "DROP DATABASE tpc",
            "DROP LOCATION lake",
            "CREATE ROLE marketing COMMENT 'the marketing team'",
            "DROP ROLE marketing",
            "CREATE USER david PASSWORD 'david-pass' DEFAULT ROLE marketing",
            "CREATE USER svc_etl DEFAULT ROLE electronics",
            "ALTER USER david SET PASSWORD 'x'",
            "ALTER USER david SET DEFAULT ROLE marketing",
            "DROP USER david",
            "CREATE GROUP analysts",
            "ALTER GROUP analysts ADD USER david",
            "ALTER GROUP analysts REMOVE USER david",
            "GRANT ROLE marketing TO USER david",
            "GRANT ROLE marketing TO GROUP analysts",
            "REVOKE ROLE marketing FROM GROUP analysts",
            "GRANT SELECT, DESCRIBE ON DATABASE tpc TO ROLE r",
            "GRANT INSERT ON TABLE crm.people TO ROLE r COLUMNS (id, customer.name) WHERE id > 0 AS people_writes",
            "GRANT CREATE_TABLE ON DATABASE crm TO ROLE r",
            "REVOKE INSERT ON TABLE crm.people FROM ROLE r",
            "GRANT ADMINISTER ON CATALOG TO ROLE r WITH GRANT OPTION",
            "REVOKE SELECT ON TABLE tpc.t FROM ROLE r",
            "REVOKE GRANT g1;",
            "SHOW GRANTS",
            "SHOW GRANTS TO ROLE r",
            "SHOW GRANTS ON TABLE tpc.t",
            "SHOW GRANTS TO ROLE r ON TABLE tpc.t",
            "GRANT SELECT ON TABLE tpc.\"Mixed Case\" TO ROLE r COLUMNS (a, \"B\") MASK a USING hash, \"B\" USING (upper(\"B\")) WHERE a > 'it''s' AS g WITH GRANT OPTION",
            "SHOW ROLES",
            "SHOW USERS",
            "SHOW GROUPS",
            "SHOW LOCATIONS",
            "SHOW EFFECTIVE ACCESS FOR ROLE r ON TABLE tpc.t",
            "CREATE TAG pii VALUES ('email', 'it''s') COMMENT 'personal data'",
            "DROP TAG pii",
            "ALTER DATABASE tpc SET TAGS (domain = 'sales', tier = 'gold')",
            "ALTER TABLE tpc.t SET TAGS (domain = 'sales')",
            "ALTER TABLE tpc.t ALTER COLUMN \"E-mail\" SET TAGS (pii = 'email')",
            "ALTER TABLE tpc.t ALTER COLUMN customer.\"E-mail\" SET TAGS (pii = 'email')",
            "GRANT SELECT ON TABLE crm.people TO ROLE r COLUMNS (id, customer.address.city) MASK customer.email USING hash",
            "GRANT SELECT ON TABLE crm.people TO ROLE r EXCLUDING COLUMNS (orders.item)",
            "ALTER TABLE tpc.t UNSET TAGS (domain, tier)",
            "ALTER DATABASE tpc UNSET TAGS (domain)",
            "GRANT SELECT ON TAGGED domain = 'sales' AND NOT pii IN ('email', 'name') TO ROLE r AS g",
            "MASK COLUMNS TAGGED pii = 'email' USING hash FOR ROLE r AS emails",
            "ROW FILTER ON TAGGED domain = 'sales' OR tier IS NULL FOR ROLE r WHERE region IN ('EU') AS eu",
            "DROP MASK emails",
            "DROP ROW FILTER eu",
            "SHOW TAGS",
            "SHOW TAGS ON TABLE tpc.t",
            "GRANT ASSIGN ON TAG pii TO ROLE steward WITH GRANT OPTION",
            "REVOKE ASSIGN ON TAG pii FROM ROLE steward",
        ];
        for sql in cases {
            let statement = parse(sql);
            // Shown as SQL that reads back to the same statement.
            let shown = statement.to_string();
            if !matches!(
                statement,
                AdminStatement::CreateUser { .. } | AdminStatement::SetPassword { .. }
            ) {
                assert_eq!(parse(&shown), statement, "{sql} shown as {shown}");
            }
            assert!(
                !format!("{statement:?}").contains("david-pass"),
                "{statement:?}"
            );
        }
    }

    #[test]
    fn nested_fields_are_named_by_dotted_paths() {
        let AdminStatement::Grant(grant) = parse(
            "GRANT SELECT ON TABLE crm.people TO ROLE r COLUMNS (id, Customer.\"Home Address\".city) \
             MASK customer.email USING hash",
        ) else {
            panic!("a grant")
        };
        assert_eq!(
            grant.columns,
            Columns::Only(vec!["id".into(), "customer.Home Address.city".into()])
        );
        assert_eq!(grant.masks[0].0, "customer.email");
    }

    #[test]
    fn mistakes_say_where() {
        let error = parse_admin("GRANT SELECT ON TABLE tpc.t TO marketing")
            .unwrap()
            .unwrap_err();
        let AdminError::Invalid { message, position } = &error else {
            panic!("{error}")
        };
        assert_eq!(message, "expected ROLE, found 'marketing'");
        assert_eq!(
            *position,
            Some(SqlPosition {
                line: 1,
                column: 32
            })
        );
        let error = parse_admin("CREATE USER d PASSWORD 'secret' 'more'")
            .unwrap()
            .unwrap_err();
        assert!(!error.to_string().contains("more"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("CREATE USER david PASSWORD 'david-pass' DEFAULT ROLE m"),
            "CREATE USER david PASSWORD '***' DEFAULT ROLE m"
        );
        assert_eq!(
            redacted("alter user d set password 'x''y'"),
            "alter user d set password '***'"
        );
        assert!(!redacted("CREATE USER d PASSWORD 'unterminated").contains("unterminated"));
        let shown = redacted("CREATE USER u PASSWORD 'first' 'second' \"third\" $$fourth$$");
        for secret in ["first", "second", "third", "fourth"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(redacted("SELECT 'x' FROM t"), "SELECT 'x' FROM t");
    }
}
