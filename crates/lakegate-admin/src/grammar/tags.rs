//! The grammar of the tag statements: `MASK COLUMNS TAGGED`, `ROW FILTER ON
//! TAGGED`, tag expressions, and `SET TAGS` / `UNSET TAGS` on a database,
//! table or column.

use datafusion::sql::sqlparser::tokenizer::Token;
use lakegate_policy::TagExpr;

use super::{Grammar, position_of};
use crate::error::AdminError;
use crate::statement::{AdminStatement, TagTarget};

impl Grammar<'_, '_> {
    /// `MASK COLUMNS TAGGED <expr> USING mask FOR ROLE r [AS name]`.
    pub(super) fn tag_mask(&mut self) -> Result<AdminStatement, AdminError> {
        self.expect_word("COLUMNS")?;
        self.expect_word("TAGGED")?;
        let tagged = self.tag_expr()?;
        self.expect_word("USING")?;
        let mask = self.name()?;
        self.expect_word("FOR")?;
        self.expect_word("ROLE")?;
        let role = self.name()?;
        let name = self.alias()?;
        Ok(AdminStatement::CreateTagMask {
            tagged,
            mask,
            role,
            name,
        })
    }

    /// `ROW FILTER ON TAGGED <expr> FOR ROLE r WHERE <sql> [AS name]`.
    pub(super) fn tag_row_filter(&mut self) -> Result<AdminStatement, AdminError> {
        self.expect_word("FILTER")?;
        self.expect_word("ON")?;
        self.expect_word("TAGGED")?;
        let tagged = self.tag_expr()?;
        self.expect_word("FOR")?;
        self.expect_word("ROLE")?;
        let role = self.name()?;
        self.expect_word("WHERE")?;
        let row_filter = self.expression()?;
        let name = self.alias()?;
        Ok(AdminStatement::CreateTagRowFilter {
            tagged,
            role,
            row_filter,
            name,
        })
    }

    /// `[AS name]`.
    pub(super) fn alias(&mut self) -> Result<Option<String>, AdminError> {
        if self.word("AS") {
            Ok(Some(self.name()?))
        } else {
            Ok(None)
        }
    }

    /// A tag expression (`domain = 'sales' AND NOT pii IS NULL`): read as
    /// a SQL expression, then narrowed to what a tag expression may say.
    pub(super) fn tag_expr(&mut self) -> Result<TagExpr, AdminError> {
        let start = self.parser.peek_token();
        let text = self.expression()?;
        text.parse::<TagExpr>().map_err(|e| AdminError::Invalid {
            message: e.to_string(),
            position: position_of(&start),
        })
    }

    /// `SET TAGS (key = 'value', ...)` or `UNSET TAGS (key, ...)` on `on`.
    pub(super) fn tags_change(&mut self, on: TagTarget) -> Result<AdminStatement, AdminError> {
        if self.expect_one_of(&["SET", "UNSET"])? == "UNSET" {
            self.expect_word("TAGS")?;
            return Ok(AdminStatement::UnsetTags {
                on,
                keys: self.name_list()?,
            });
        }
        self.expect_word("TAGS")?;
        self.expect(Token::LParen)?;
        let mut tags = Vec::new();
        loop {
            let key = self.name()?;
            self.expect(Token::Eq)?;
            tags.push((key, self.string()?));
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect(Token::RParen)?;
        Ok(AdminStatement::SetTags { on, tags })
    }
}
