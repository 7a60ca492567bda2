//! Write access: what one role may append to one table, resolved from its
//! `insert` grants.
//!
//! A written row is accepted when some insert grant covering the table
//! accepts it: the grant's row filter (its *check*, PostgreSQL's `WITH
//! CHECK`) holds for the row, and every column outside the grant's column
//! list is NULL in it. A statement is written whole or not at all: one row
//! no grant accepts refuses it. Without an insert grant nothing is
//! accepted (default deny). Masks shape what is read and never apply to
//! writes; write grants imply no read.

use serde::Serialize;

use crate::model::{Grant, Privilege, TableName};

/// One insert grant as it applies to a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteGrant {
    /// The grant's name (a refusal names it).
    pub grant: String,
    /// The policy columns the grant lets the role write, in table order.
    pub columns: Vec<String>,
    /// SQL every row written under the grant must satisfy; `None`: any row.
    pub check: Option<String>,
}

/// Everything the engine needs to check one role's writes to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteAccess {
    /// The table.
    pub table: TableName,
    /// The runtime role.
    pub role: String,
    /// The insert grants covering the table; a row is accepted by any one.
    pub grants: Vec<WriteGrant>,
}

impl WriteAccess {
    /// Resolves the write access of `role` to `table` (whose policy columns
    /// are `table_columns`) from `grants`; `None` when no insert grant
    /// covers the table.
    pub fn resolve<'a>(
        role: &str,
        table: &TableName,
        table_columns: &[String],
        grants: impl IntoIterator<Item = &'a Grant>,
    ) -> Option<Self> {
        let grants: Vec<WriteGrant> = grants
            .into_iter()
            .filter(|g| g.role == role && g.confers(Privilege::Insert))
            .filter(|g| g.resource.covers(table))
            .map(|g| WriteGrant {
                grant: g.name.clone(),
                columns: table_columns
                    .iter()
                    .filter(|c| g.columns.admits(c, table_columns))
                    .cloned()
                    .collect(),
                check: g.row_filter.clone(),
            })
            .collect();
        (!grants.is_empty()).then(|| Self {
            table: table.clone(),
            role: role.to_string(),
            grants,
        })
    }

    /// Whether every row is accepted as it is: some grant writes every
    /// column and checks nothing.
    pub fn accepts_every_row(&self, table_columns: &[String]) -> bool {
        self.grants
            .iter()
            .any(|g| g.check.is_none() && g.columns.len() == table_columns.len())
    }

    /// The policy columns no grant lets the role write: a value in one of
    /// them refuses the row whatever else it holds.
    pub fn unwritable_columns(&self, table_columns: &[String]) -> Vec<String> {
        table_columns
            .iter()
            .filter(|c| !self.grants.iter().any(|g| g.columns.contains(c)))
            .cloned()
            .collect()
    }

    /// The names of the grants, for refusals and the audit log.
    pub fn grant_names(&self) -> Vec<&str> {
        self.grants.iter().map(|g| g.grant.as_str()).collect()
    }
}
