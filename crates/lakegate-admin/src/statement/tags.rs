//! The tag statements' targets and their SQL form (see `statement.rs`).

use std::fmt;

use lakegate_policy::TableName;

use super::AdminStatement;
use super::sql::{sql_column, sql_comment, sql_name, sql_names, sql_string, sql_table};

/// What tags are set on or unset from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagTarget {
    /// `ALTER DATABASE db ...`.
    Database(String),
    /// `ALTER TABLE db.t ...`.
    Table(TableName),
    /// `ALTER TABLE db.t ALTER COLUMN c ...`.
    Column(TableName, String),
}

impl fmt::Display for TagTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Database(database) => write!(f, "DATABASE {}", sql_name(database)),
            Self::Table(table) => write!(f, "TABLE {}", sql_table(table)),
            Self::Column(table, column) => write!(
                f,
                "TABLE {} ALTER COLUMN {}",
                sql_table(table),
                sql_column(column)
            ),
        }
    }
}

/// A tag statement as SQL that parses back to it.
pub(super) fn fmt_tag_statement(
    statement: &AdminStatement,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    match statement {
        AdminStatement::CreateTag {
            key,
            values,
            comment,
        } => {
            let values: Vec<String> = values.iter().map(|v| sql_string(v)).collect();
            write!(
                f,
                "CREATE TAG {} VALUES ({}){}",
                sql_name(key),
                values.join(", "),
                sql_comment(comment)
            )
        }
        AdminStatement::DropTag(key) => write!(f, "DROP TAG {}", sql_name(key)),
        AdminStatement::SetTags { on, tags } => {
            let tags: Vec<String> = tags
                .iter()
                .map(|(key, value)| format!("{} = {}", sql_name(key), sql_string(value)))
                .collect();
            write!(f, "ALTER {on} SET TAGS ({})", tags.join(", "))
        }
        AdminStatement::UnsetTags { on, keys } => {
            write!(f, "ALTER {on} UNSET TAGS ({})", sql_names(keys))
        }
        AdminStatement::CreateTagMask {
            tagged,
            mask,
            role,
            name,
        } => {
            write!(
                f,
                "MASK COLUMNS TAGGED {tagged} USING {} FOR ROLE {}",
                sql_name(mask),
                sql_name(role)
            )?;
            match name {
                Some(name) => write!(f, " AS {}", sql_name(name)),
                None => Ok(()),
            }
        }
        AdminStatement::CreateTagRowFilter {
            tagged,
            role,
            row_filter,
            name,
        } => {
            write!(
                f,
                "ROW FILTER ON TAGGED {tagged} FOR ROLE {} WHERE {row_filter}",
                sql_name(role)
            )?;
            match name {
                Some(name) => write!(f, " AS {}", sql_name(name)),
                None => Ok(()),
            }
        }
        AdminStatement::DropTagMask(name) => write!(f, "DROP MASK {}", sql_name(name)),
        AdminStatement::DropTagRowFilter(name) => write!(f, "DROP ROW FILTER {}", sql_name(name)),
        AdminStatement::ShowTags { table } => match table {
            Some(table) => write!(f, "SHOW TAGS ON TABLE {}", sql_table(table)),
            None => f.write_str("SHOW TAGS"),
        },
        other => unreachable!("{} is not a tag statement", other.kind()),
    }
}
