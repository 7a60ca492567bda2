//! The administration statements' parser: sqlparser's tokenizer and
//! expression parser, with Lakegate's grammar for the statements SQL has no
//! standard form of (`CREATE LOCATION`, `GRANT ... MASK ... WHERE`, `SHOW
//! EFFECTIVE ACCESS`), and the redaction of passwords from statement text.
//!
//! [`parse_admin`] says first whether a text is an administration statement
//! at all (by its leading words), so that queries, `SHOW TABLES` and the
//! like go on to the engine untouched.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use lakegate_engine::SqlPosition;
use lakegate_policy::{Privilege, TableName};

use crate::error::AdminError;
use crate::statement::{AdminStatement, Columns, DataGrant, Grantee, MaskSpec, Target};

/// Nesting allowed in a statement's expressions (row filters, masks), as
/// for queries.
const RECURSION_LIMIT: usize = 50;

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

fn parse_statement(sql: &str, tokens: Vec<TokenWithSpan>) -> Result<AdminStatement, AdminError> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let mut grammar = Grammar {
        parser: &mut parser,
        sql,
    };
    let statement = grammar.statement()?;
    let _ = grammar.parser.consume_token(&Token::SemiColon);
    let rest = grammar.parser.peek_token();
    if rest.token != Token::EOF {
        return Err(grammar.unexpected("the end of the statement", &rest));
    }
    Ok(statement)
}

/// The grammar, over sqlparser's parser.
struct Grammar<'p, 'a> {
    parser: &'p mut Parser<'a>,
    sql: &'a str,
}

impl Grammar<'_, '_> {
    fn statement(&mut self) -> Result<AdminStatement, AdminError> {
        let first = self.expect_one_of(&["CREATE", "DROP", "ALTER", "GRANT", "REVOKE", "SHOW"])?;
        match first {
            "CREATE" => self.create(),
            "DROP" => self.drop(),
            "ALTER" => self.alter(),
            "GRANT" => self.grant(),
            "REVOKE" => self.revoke(),
            _ => self.show(),
        }
    }

    fn create(&mut self) -> Result<AdminStatement, AdminError> {
        let what =
            self.expect_one_of(&["LOCATION", "DATABASE", "EXTERNAL", "ROLE", "USER", "GROUP"])?;
        Ok(match what {
            "LOCATION" => {
                let name = self.name()?;
                self.expect_word("URL")?;
                let url = self.string()?;
                let mut settings = Vec::new();
                if self.word("WITH") {
                    self.expect(Token::LParen)?;
                    loop {
                        let key = self.name()?;
                        self.expect(Token::Eq)?;
                        settings.push((key, self.setting_value()?));
                        if !self.parser.consume_token(&Token::Comma) {
                            break;
                        }
                    }
                    self.expect(Token::RParen)?;
                }
                AdminStatement::CreateLocation {
                    name,
                    url,
                    settings,
                }
            }
            "DATABASE" => AdminStatement::CreateDatabase {
                name: self.name()?,
                comment: self.comment()?,
            },
            "EXTERNAL" => {
                self.expect_word("TABLE")?;
                let name = self.table_name()?;
                self.expect_word("STORED")?;
                self.expect_word("AS")?;
                self.expect_word("PARQUET")?;
                self.expect_word("LOCATION")?;
                let url = self.string()?;
                let mut partition_columns = Vec::new();
                if self.word("PARTITIONED") {
                    self.expect_word("BY")?;
                    self.expect(Token::LParen)?;
                    loop {
                        let column = self.name()?;
                        let data_type = self.name()?;
                        partition_columns.push((column, data_type));
                        if !self.parser.consume_token(&Token::Comma) {
                            break;
                        }
                    }
                    self.expect(Token::RParen)?;
                }
                AdminStatement::CreateTable {
                    name,
                    url,
                    partition_columns,
                    comment: self.comment()?,
                }
            }
            "ROLE" => AdminStatement::CreateRole {
                name: self.name()?,
                comment: self.comment()?,
            },
            "USER" => {
                let name = self.name()?;
                self.expect_word("PASSWORD")?;
                let password = self.string()?;
                let default_role = if self.word("DEFAULT") {
                    self.expect_word("ROLE")?;
                    Some(self.name()?)
                } else {
                    None
                };
                AdminStatement::CreateUser {
                    name,
                    password,
                    default_role,
                }
            }
            _ => AdminStatement::CreateGroup(self.name()?),
        })
    }

    fn drop(&mut self) -> Result<AdminStatement, AdminError> {
        let what =
            self.expect_one_of(&["LOCATION", "DATABASE", "TABLE", "ROLE", "USER", "GROUP"])?;
        Ok(match what {
            "LOCATION" => AdminStatement::DropLocation(self.name()?),
            "DATABASE" => AdminStatement::DropDatabase(self.name()?),
            "TABLE" => AdminStatement::DropTable(self.table_name()?),
            "ROLE" => AdminStatement::DropRole(self.name()?),
            "USER" => AdminStatement::DropUser(self.name()?),
            _ => AdminStatement::DropGroup(self.name()?),
        })
    }

    fn alter(&mut self) -> Result<AdminStatement, AdminError> {
        let what = self.expect_one_of(&["CATALOG", "USER", "GROUP"])?;
        if what == "CATALOG" {
            self.expect_word("SET")?;
            self.expect_word("DEFAULT")?;
            self.expect_word("DATABASE")?;
            return Ok(AdminStatement::SetDefaultDatabase(self.name()?));
        }
        if what == "USER" {
            let user = self.name()?;
            self.expect_word("SET")?;
            if self.word("PASSWORD") {
                let password = self.string()?;
                return Ok(AdminStatement::SetPassword { user, password });
            }
            self.expect_word("DEFAULT")?;
            self.expect_word("ROLE")?;
            let role = self.name()?;
            return Ok(AdminStatement::SetDefaultRole { user, role });
        }
        let group = self.name()?;
        let add = self.expect_one_of(&["ADD", "REMOVE"])? == "ADD";
        self.expect_word("USER")?;
        let user = self.name()?;
        Ok(AdminStatement::AlterGroup { group, user, add })
    }

    fn grant(&mut self) -> Result<AdminStatement, AdminError> {
        if self.word("ROLE") {
            let role = self.name()?;
            self.expect_word("TO")?;
            let to = self.grantee()?;
            return Ok(AdminStatement::GrantRole { role, to });
        }
        let privileges = self.privileges()?;
        self.expect_word("ON")?;
        let target = self.target()?;
        self.expect_word("TO")?;
        self.expect_word("ROLE")?;
        let role = self.name()?;
        let mut grant = DataGrant {
            privileges,
            target,
            role,
            columns: Columns::All,
            masks: Vec::new(),
            row_filter: None,
            name: None,
            grantable: false,
        };
        if self.word("COLUMNS") {
            grant.columns = Columns::Only(self.name_list()?);
        } else if self.word("EXCLUDING") {
            self.expect_word("COLUMNS")?;
            grant.columns = Columns::Excluding(self.name_list()?);
        }
        if self.word("MASK") {
            loop {
                let column = self.name()?;
                self.expect_word("USING")?;
                let mask = if self.parser.consume_token(&Token::LParen) {
                    let expression = self.expression()?;
                    self.expect(Token::RParen)?;
                    MaskSpec::Expression(expression)
                } else {
                    MaskSpec::Builtin(self.name()?)
                };
                grant.masks.push((column, mask));
                if !self.parser.consume_token(&Token::Comma) {
                    break;
                }
            }
        }
        if self.word("WHERE") {
            grant.row_filter = Some(self.expression()?);
        }
        if self.word("AS") {
            grant.name = Some(self.name()?);
        }
        if self.word("WITH") {
            self.expect_word("GRANT")?;
            self.expect_word("OPTION")?;
            grant.grantable = true;
        }
        Ok(AdminStatement::Grant(grant))
    }

    fn revoke(&mut self) -> Result<AdminStatement, AdminError> {
        if self.word("ROLE") {
            let role = self.name()?;
            self.expect_word("FROM")?;
            let from = self.grantee()?;
            return Ok(AdminStatement::RevokeRole { role, from });
        }
        if self.word("GRANT") {
            return Ok(AdminStatement::RevokeGrant(self.name()?));
        }
        let privileges = self.privileges()?;
        self.expect_word("ON")?;
        let target = self.target()?;
        self.expect_word("FROM")?;
        self.expect_word("ROLE")?;
        let role = self.name()?;
        Ok(AdminStatement::Revoke {
            privileges,
            target,
            role,
        })
    }

    fn show(&mut self) -> Result<AdminStatement, AdminError> {
        let what = self.expect_one_of(&[
            "GRANTS",
            "ROLES",
            "USERS",
            "GROUPS",
            "LOCATIONS",
            "EFFECTIVE",
        ])?;
        Ok(match what {
            "GRANTS" => {
                let (mut role, mut table) = (None, None);
                if self.word("TO") {
                    self.expect_word("ROLE")?;
                    role = Some(self.name()?);
                }
                if self.word("ON") {
                    self.expect_word("TABLE")?;
                    table = Some(self.table_name()?);
                }
                AdminStatement::ShowGrants { role, table }
            }
            "ROLES" => AdminStatement::ShowRoles,
            "USERS" => AdminStatement::ShowUsers,
            "GROUPS" => AdminStatement::ShowGroups,
            "LOCATIONS" => AdminStatement::ShowLocations,
            _ => {
                self.expect_word("ACCESS")?;
                self.expect_word("FOR")?;
                self.expect_word("ROLE")?;
                let role = self.name()?;
                self.expect_word("ON")?;
                self.expect_word("TABLE")?;
                let table = self.table_name()?;
                AdminStatement::ShowEffectiveAccess { role, table }
            }
        })
    }

    /// `SELECT`, `DESCRIBE`, `ADMINISTER`, `ALL`, comma-separated.
    fn privileges(&mut self) -> Result<Vec<Privilege>, AdminError> {
        let mut privileges = Vec::new();
        loop {
            match self.expect_one_of(&["SELECT", "DESCRIBE", "ADMINISTER", "ALL"])? {
                "SELECT" => privileges.push(Privilege::Select),
                "DESCRIBE" => privileges.push(Privilege::Describe),
                "ADMINISTER" => privileges.push(Privilege::Administer),
                _ => {
                    self.word("PRIVILEGES");
                    privileges.extend([Privilege::Select, Privilege::Describe]);
                }
            }
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        privileges.sort();
        privileges.dedup();
        Ok(privileges)
    }

    /// `TABLE db.t`, `DATABASE db` or `CATALOG`.
    fn target(&mut self) -> Result<Target, AdminError> {
        Ok(
            match self.expect_one_of(&["TABLE", "DATABASE", "CATALOG"])? {
                "TABLE" => Target::Table(self.table_name()?),
                "DATABASE" => Target::Database(self.name()?),
                _ => Target::Catalog,
            },
        )
    }

    /// `USER name` or `GROUP name`.
    fn grantee(&mut self) -> Result<Grantee, AdminError> {
        let user = self.expect_one_of(&["USER", "GROUP"])? == "USER";
        let name = self.name()?;
        Ok(if user {
            Grantee::User(name)
        } else {
            Grantee::Group(name)
        })
    }

    /// `[COMMENT 'text']`.
    fn comment(&mut self) -> Result<String, AdminError> {
        if self.word("COMMENT") {
            self.string()
        } else {
            Ok(String::new())
        }
    }

    /// A name: an identifier as DataFusion reads one (unquoted lowercased,
    /// quoted as written).
    fn name(&mut self) -> Result<String, AdminError> {
        let token = self.parser.next_token();
        match &token.token {
            Token::Word(word) if word.quote_style.is_some() => Ok(word.value.clone()),
            Token::Word(word) => Ok(word.value.to_ascii_lowercase()),
            _ => Err(self.unexpected("a name", &token)),
        }
    }

    /// `db.table`.
    fn table_name(&mut self) -> Result<TableName, AdminError> {
        let database = self.name()?;
        let dot = self.parser.peek_token();
        if dot.token != Token::Period {
            return Err(self.unexpected("'.' and a table name (tables are named db.table)", &dot));
        }
        self.parser.next_token();
        Ok(TableName::new(database, self.name()?))
    }

    /// `(name, ...)`.
    fn name_list(&mut self) -> Result<Vec<String>, AdminError> {
        self.expect(Token::LParen)?;
        let mut names = vec![self.name()?];
        while self.parser.consume_token(&Token::Comma) {
            names.push(self.name()?);
        }
        self.expect(Token::RParen)?;
        Ok(names)
    }

    /// A string literal.
    fn string(&mut self) -> Result<String, AdminError> {
        let token = self.parser.next_token();
        match &token.token {
            Token::SingleQuotedString(text) => Ok(text.clone()),
            _ => Err(self.unexpected("a quoted string", &token)),
        }
    }

    /// A setting's value: a string, a number or a boolean.
    fn setting_value(&mut self) -> Result<toml::Value, AdminError> {
        let token = self.parser.next_token();
        match &token.token {
            Token::SingleQuotedString(text) => Ok(toml::Value::String(text.clone())),
            Token::Number(number, _) => number
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| self.unexpected("a whole number", &token)),
            Token::Word(word) if word.value.eq_ignore_ascii_case("true") => {
                Ok(toml::Value::Boolean(true))
            }
            Token::Word(word) if word.value.eq_ignore_ascii_case("false") => {
                Ok(toml::Value::Boolean(false))
            }
            _ => Err(self.unexpected("a quoted string, a number, true or false", &token)),
        }
    }

    /// A SQL expression, as the text it was written as.
    fn expression(&mut self) -> Result<String, AdminError> {
        let start = self.parser.peek_token().span.start;
        let parsed = self.parser.parse_expr().map_err(parser_error)?;
        let end = self.parser.peek_token().span.start;
        Ok(text_between(self.sql, start, end).unwrap_or_else(|| parsed.to_string()))
    }

    /// Consumes the word `word` if it comes next.
    fn word(&mut self, word: &str) -> bool {
        let next = self.parser.peek_token();
        if is_word(&next.token, word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<(), AdminError> {
        let next = self.parser.peek_token();
        if self.word(word) {
            Ok(())
        } else {
            Err(self.unexpected(word, &next))
        }
    }

    /// The one of `words` that comes next (as given).
    fn expect_one_of(&mut self, words: &[&'static str]) -> Result<&'static str, AdminError> {
        let next = self.parser.peek_token();
        match words.iter().find(|w| is_word(&next.token, w)) {
            Some(word) => {
                self.parser.next_token();
                Ok(word)
            }
            None => Err(self.unexpected(&words.join(", "), &next)),
        }
    }

    fn expect(&mut self, token: Token) -> Result<(), AdminError> {
        let next = self.parser.peek_token();
        if self.parser.consume_token(&token) {
            Ok(())
        } else {
            Err(self.unexpected(&token.to_string(), &next))
        }
    }

    /// "expected X, found Y" at `found`. A string literal found is never
    /// shown: it may be a password.
    fn unexpected(&self, expected: &str, found: &TokenWithSpan) -> AdminError {
        let shown = match &found.token {
            Token::EOF => "the end of the statement".to_string(),
            Token::SingleQuotedString(_) => "a quoted string".to_string(),
            other => format!("'{other}'"),
        };
        AdminError::Invalid {
            message: format!("expected {expected}, found {shown}"),
            position: position_of(found),
        }
    }
}

fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn position_of(token: &TokenWithSpan) -> Option<SqlPosition> {
    let start = token.span.start;
    (start.line > 0).then_some(SqlPosition {
        line: start.line,
        column: start.column,
    })
}

/// The text of `sql` from `start` up to `end` (token positions), trimmed.
fn text_between(
    sql: &str,
    start: datafusion::sql::sqlparser::tokenizer::Location,
    end: datafusion::sql::sqlparser::tokenizer::Location,
) -> Option<String> {
    let offset = |line: u64, column: u64| -> Option<usize> {
        let mut offset = 0;
        for (number, text) in sql.split_inclusive('\n').enumerate() {
            if number as u64 + 1 == line {
                let within: usize = text
                    .chars()
                    .take(column.saturating_sub(1) as usize)
                    .map(char::len_utf8)
                    .sum();
                return Some(offset + within);
            }
            offset += text.len();
        }
        Some(sql.len())
    };
    let from = offset(start.line, start.column)?;
    let to = if end.line == 0 {
        sql.len()
    } else {
        offset(end.line, end.column)?
    };
    let text = sql.get(from..to)?.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn parser_error(error: ParserError) -> AdminError {
    match error {
        ParserError::RecursionLimitExceeded => AdminError::Invalid {
            message: format!("the expression nests deeper than {RECURSION_LIMIT} levels"),
            position: None,
        },
        other => AdminError::invalid_from(other.to_string()),
    }
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
    use super::*;

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
            "DROP TABLE tpc.t",
            "DROP DATABASE tpc",
            "DROP LOCATION lake",
            "CREATE ROLE marketing COMMENT 'the marketing team'",
            "DROP ROLE marketing",
            "CREATE USER david PASSWORD 'david-pass' DEFAULT ROLE marketing",
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
