//! The grammar's terms: privileges, targets, grantees, names, lists,
//! strings, setting values and expressions; the words and tokens they are
//! made of, and errors that name the position of the token that does not
//! fit.

use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use lakegate_engine::SqlPosition;
use lakegate_policy::{Privilege, TableName};

use super::{Grammar, RECURSION_LIMIT};
use crate::error::AdminError;
use crate::statement::{Grantee, Target};

impl Grammar<'_, '_> {
    /// `SELECT`, `DESCRIBE`, `INSERT`, `CREATE_TABLE`, `ADMINISTER`,
    /// `ASSIGN`, `ALL` (`SELECT, DESCRIBE`), comma-separated.
    pub(super) fn privileges(&mut self) -> Result<Vec<Privilege>, AdminError> {
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
    pub(super) fn target(&mut self) -> Result<Target, AdminError> {
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
    pub(super) fn grantee(&mut self) -> Result<Grantee, AdminError> {
        let user = self.expect_one_of(&["USER", "GROUP"])? == "USER";
        let name = self.name()?;
        Ok(if user {
            Grantee::User(name)
        } else {
            Grantee::Group(name)
        })
    }

    /// `[COMMENT 'text']`.
    pub(super) fn comment(&mut self) -> Result<String, AdminError> {
        if self.word("COMMENT") {
            self.string()
        } else {
            Ok(String::new())
        }
    }

    /// A name: an identifier as DataFusion reads one (unquoted lowercased,
    /// quoted as written).
    pub(super) fn name(&mut self) -> Result<String, AdminError> {
        let token = self.parser.next_token();
        match &token.token {
            Token::Word(word) if word.quote_style.is_some() => Ok(word.value.clone()),
            Token::Word(word) => Ok(word.value.to_ascii_lowercase()),
            _ => Err(self.unexpected("a name", &token)),
        }
    }

    /// `db.table`.
    pub(super) fn table_name(&mut self) -> Result<TableName, AdminError> {
        let database = self.name()?;
        let dot = self.parser.peek_token();
        if dot.token != Token::Period {
            return Err(self.unexpected("'.' and a table name (tables are named db.table)", &dot));
        }
        self.parser.next_token();
        Ok(TableName::new(database, self.name()?))
    }

    /// A column, or a nested field as its dotted path (`customer.address.city`).
    pub(super) fn column_path(&mut self) -> Result<String, AdminError> {
        let mut path = self.name()?;
        while self.parser.consume_token(&Token::Period) {
            path.push('.');
            path.push_str(&self.name()?);
        }
        Ok(path)
    }

    /// `(column, ...)`, each a column or a nested field's dotted path.
    pub(super) fn column_list(&mut self) -> Result<Vec<String>, AdminError> {
        self.expect(Token::LParen)?;
        let mut columns = vec![self.column_path()?];
        while self.parser.consume_token(&Token::Comma) {
            columns.push(self.column_path()?);
        }
        self.expect(Token::RParen)?;
        Ok(columns)
    }

    /// `(name, ...)`.
    pub(super) fn name_list(&mut self) -> Result<Vec<String>, AdminError> {
        self.expect(Token::LParen)?;
        let mut names = vec![self.name()?];
        while self.parser.consume_token(&Token::Comma) {
            names.push(self.name()?);
        }
        self.expect(Token::RParen)?;
        Ok(names)
    }

    /// A string literal.
    pub(super) fn string(&mut self) -> Result<String, AdminError> {
        let token = self.parser.next_token();
        match &token.token {
            Token::SingleQuotedString(text) => Ok(text.clone()),
            _ => Err(self.unexpected("a quoted string", &token)),
        }
    }

    /// A setting's value: a string, a number or a boolean.
    pub(super) fn setting_value(&mut self) -> Result<toml::Value, AdminError> {
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
    pub(super) fn expression(&mut self) -> Result<String, AdminError> {
        let start = self.parser.peek_token().span.start;
        let parsed = self.parser.parse_expr().map_err(parser_error)?;
        let end = self.parser.peek_token().span.start;
        Ok(text_between(self.sql, start, end).unwrap_or_else(|| parsed.to_string()))
    }

    /// Consumes the word `word` if it comes next.
    pub(super) fn word(&mut self, word: &str) -> bool {
        let next = self.parser.peek_token();
        if is_word(&next.token, word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    pub(super) fn expect_word(&mut self, word: &str) -> Result<(), AdminError> {
        let next = self.parser.peek_token();
        if self.word(word) {
            Ok(())
        } else {
            Err(self.unexpected(word, &next))
        }
    }

    /// The one of `words` that comes next (as given).
    pub(super) fn expect_one_of(
        &mut self,
        words: &[&'static str],
    ) -> Result<&'static str, AdminError> {
        let next = self.parser.peek_token();
        match words.iter().find(|w| is_word(&next.token, w)) {
            Some(word) => {
                self.parser.next_token();
                Ok(word)
            }
            None => Err(self.unexpected(&words.join(", "), &next)),
        }
    }

    pub(super) fn expect(&mut self, token: Token) -> Result<(), AdminError> {
        let next = self.parser.peek_token();
        if self.parser.consume_token(&token) {
            Ok(())
        } else {
            Err(self.unexpected(&token.to_string(), &next))
        }
    }

    /// "expected X, found Y" at `found`. A string literal found is never
    /// shown: it may be a password.
    pub(super) fn unexpected(&self, expected: &str, found: &TokenWithSpan) -> AdminError {
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

pub(super) fn position_of(token: &TokenWithSpan) -> Option<SqlPosition> {
    let start = token.span.start;
    (start.line > 0).then_some(SqlPosition {
        line: start.line,
        column: start.column,
    })
}

/// The text of `sql` from `start` up to `end` (token positions), trimmed.
pub(super) fn text_between(
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

pub(super) fn parser_error(error: ParserError) -> AdminError {
    match error {
        ParserError::RecursionLimitExceeded => AdminError::Invalid {
            message: format!("the expression nests deeper than {RECURSION_LIMIT} levels"),
            position: None,
        },
        other => AdminError::invalid_from(other.to_string()),
    }
}
