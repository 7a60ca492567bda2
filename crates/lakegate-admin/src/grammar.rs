//! The administration statements' grammar, over sqlparser's parser: the
//! forms of [`AdminStatement`], with sqlparser's expression parser for row
//! filters and mask expressions, and errors that give the position of the
//! token that does not fit.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use lakegate_catalog::TableFormat;
use lakegate_engine::SqlPosition;
use lakegate_policy::{Privilege, TableName};

use crate::error::AdminError;
use crate::statement::{AdminStatement, Columns, DataGrant, Grantee, MaskSpec, TagTarget, Target};

mod tags;

/// Nesting allowed in a statement's expressions (row filters, masks), as
/// for queries.
const RECURSION_LIMIT: usize = 50;

pub(crate) fn parse_statement(
    sql: &str,
    tokens: Vec<TokenWithSpan>,
) -> Result<AdminStatement, AdminError> {
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
        let first = self.expect_one_of(&[
            "CREATE", "DROP", "ALTER", "GRANT", "REVOKE", "SHOW", "MASK", "ROW",
        ])?;
        match first {
            "CREATE" => self.create(),
            "DROP" => self.drop(),
            "ALTER" => self.alter(),
            "GRANT" => self.grant(),
            "REVOKE" => self.revoke(),
            "MASK" => self.tag_mask(),
            "ROW" => self.tag_row_filter(),
            _ => self.show(),
        }
    }

    fn create(&mut self) -> Result<AdminStatement, AdminError> {
        let what = self.expect_one_of(&[
            "LOCATION", "DATABASE", "EXTERNAL", "ROLE", "USER", "GROUP", "TAG",
        ])?;
        Ok(match what {
            "TAG" => {
                let key = self.name()?;
                self.expect_word("VALUES")?;
                self.expect(Token::LParen)?;
                let mut values = vec![self.string()?];
                while self.parser.consume_token(&Token::Comma) {
                    values.push(self.string()?);
                }
                self.expect(Token::RParen)?;
                AdminStatement::CreateTag {
                    key,
                    values,
                    comment: self.comment()?,
                }
            }
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
                location: if self.word("LOCATION") {
                    Some(self.string()?)
                } else {
                    None
                },
                comment: self.comment()?,
            },
            "EXTERNAL" => {
                self.expect_word("TABLE")?;
                let name = self.table_name()?;
                self.expect_word("STORED")?;
                self.expect_word("AS")?;
                let format = if self.word("DELTA") {
                    TableFormat::Delta
                } else {
                    self.expect_word("PARQUET")?;
                    TableFormat::Parquet
                };
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
                    format,
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
                let password = if self.word("PASSWORD") {
                    Some(self.string()?)
                } else {
                    None
                };
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
        let what = self.expect_one_of(&[
            "LOCATION", "DATABASE", "TABLE", "ROLE", "USER", "GROUP", "TAG", "MASK", "ROW",
        ])?;
        Ok(match what {
            "TAG" => AdminStatement::DropTag(self.name()?),
            "MASK" => AdminStatement::DropTagMask(self.name()?),
            "ROW" => {
                self.expect_word("FILTER")?;
                AdminStatement::DropTagRowFilter(self.name()?)
            }
            "LOCATION" => AdminStatement::DropLocation(self.name()?),
            "DATABASE" => AdminStatement::DropDatabase(self.name()?),
            "TABLE" => AdminStatement::DropTable(self.table_name()?),
            "ROLE" => AdminStatement::DropRole(self.name()?),
            "USER" => AdminStatement::DropUser(self.name()?),
            _ => AdminStatement::DropGroup(self.name()?),
        })
    }

    fn alter(&mut self) -> Result<AdminStatement, AdminError> {
        let what = self.expect_one_of(&["CATALOG", "USER", "GROUP", "DATABASE", "TABLE"])?;
        if what == "DATABASE" {
            let database = self.name()?;
            return self.tags_change(TagTarget::Database(database));
        }
        if what == "TABLE" {
            let table = self.table_name()?;
            if self.word("ALTER") {
                self.expect_word("COLUMN")?;
                let column = self.column_path()?;
                return self.tags_change(TagTarget::Column(table, column));
            }
            return self.tags_change(TagTarget::Table(table));
        }
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
            grant.columns = Columns::Only(self.column_list()?);
        } else if self.word("EXCLUDING") {
            self.expect_word("COLUMNS")?;
            grant.columns = Columns::Excluding(self.column_list()?);
        }
        if self.word("MASK") {
            loop {
                let column = self.column_path()?;
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
            "TAGS",
        ])?;
        Ok(match what {
            "TAGS" => {
                let table = if self.word("ON") {
                    self.expect_word("TABLE")?;
                    Some(self.table_name()?)
                } else {
                    None
                };
                AdminStatement::ShowTags { table }
            }
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

    /// `SELECT`, `DESCRIBE`, `INSERT`, `CREATE_TABLE`, `ADMINISTER`,
    /// `ASSIGN`, `ALL` (`SELECT, DESCRIBE`), comma-separated.
    fn privileges(&mut self) -> Result<Vec<Privilege>, AdminError> {
        let mut privileges = Vec::new();
        loop {
            match self.expect_one_of(&[
                "SELECT",
                "DESCRIBE",
                "INSERT",
                "CREATE_TABLE",
                "ADMINISTER",
                "ASSIGN",
                "ALL",
            ])? {
                "SELECT" => privileges.push(Privilege::Select),
                "ASSIGN" => privileges.push(Privilege::Assign),
                "DESCRIBE" => privileges.push(Privilege::Describe),
                "INSERT" => privileges.push(Privilege::Insert),
                "CREATE_TABLE" => privileges.push(Privilege::CreateTable),
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

    /// `TABLE db.t`, `DATABASE db`, `CATALOG`, `TAGGED <expr>` or `TAG key`.
    fn target(&mut self) -> Result<Target, AdminError> {
        Ok(
            match self.expect_one_of(&["TABLE", "DATABASE", "CATALOG", "TAGGED", "TAG"])? {
                "TABLE" => Target::Table(self.table_name()?),
                "DATABASE" => Target::Database(self.name()?),
                "TAGGED" => Target::Tagged(self.tag_expr()?),
                "TAG" => Target::Tag(self.name()?),
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

    /// A column, or a nested field as its dotted path (`customer.address.city`).
    fn column_path(&mut self) -> Result<String, AdminError> {
        let mut path = self.name()?;
        while self.parser.consume_token(&Token::Period) {
            path.push('.');
            path.push_str(&self.name()?);
        }
        Ok(path)
    }

    /// `(column, ...)`, each a column or a nested field's dotted path.
    fn column_list(&mut self) -> Result<Vec<String>, AdminError> {
        self.expect(Token::LParen)?;
        let mut columns = vec![self.column_path()?];
        while self.parser.consume_token(&Token::Comma) {
            columns.push(self.column_path()?);
        }
        self.expect(Token::RParen)?;
        Ok(columns)
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

pub(crate) fn is_word(token: &Token, word: &str) -> bool {
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
