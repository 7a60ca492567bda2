//! The administration statements' grammar, over sqlparser's parser: the
//! forms of [`AdminStatement`], with sqlparser's expression parser for row
//! filters and mask expressions, and errors that give the position of the
//! token that does not fit. The statements are here; the terms they are made
//! of in `terms.rs`, the tag statements in `tags.rs`.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use lakegate_catalog::TableFormat;

use crate::error::AdminError;
use crate::statement::{AdminStatement, Columns, DataGrant, MaskSpec, TagTarget};

mod tags;
mod terms;

pub(crate) use terms::is_word;
use terms::position_of;

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
}
