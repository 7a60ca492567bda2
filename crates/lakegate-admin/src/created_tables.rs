//! Registering a table a role has just created and filled (`CREATE TABLE
//! AS`, bulk ingestion in mode create): the engine writes the table's
//! files, then the table enters the catalog through the same store
//! transaction as any administration statement.
//!
//! Creating needs `CREATE_TABLE` on the database (not `ADMINISTER`), and
//! the creating role becomes the table's owner: one grant of `SELECT` and
//! `INSERT` on the whole table, with grant option, so that it may read
//! and extend what it wrote and share it. No other role gains anything.

use lakegate_catalog::{Catalog, CatalogFile, GrantEntry, TableEntry, TableFormat};
use lakegate_policy::{Privilege, TableName};

use crate::changes::{Actor, Changed};
use crate::error::AdminError;

/// A table whose files a role has written, to be declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTable {
    /// Its name.
    pub name: TableName,
    /// The storage location holding it.
    pub storage: String,
    /// Its directory under the location, ending in `/`.
    pub path: String,
    /// How its files are organised.
    pub format: TableFormat,
}

/// Whether `role` may create tables in `database` under `served`
/// ([`Catalog::may_create_table`], which the engine asked before writing),
/// asked again when registering.
fn may_create(served: &Catalog, role: &str, database: &str) -> Result<(), AdminError> {
    if served.may_create_table(role, database) {
        return Ok(());
    }
    Err(AdminError::PermissionDenied(format!(
        "database '{database}' does not exist or role '{role}' may not create tables in it: \
         that needs CREATE_TABLE on it"
    )))
}

/// `content` with `created` declared and owned by `actor`'s role.
pub(crate) fn register(
    created: &CreatedTable,
    actor: &Actor,
    served: &Catalog,
    content: &CatalogFile,
) -> Result<Changed, AdminError> {
    let name = &created.name;
    may_create(served, &actor.role, &name.database)?;
    let mut next = content.clone();
    if next
        .table
        .iter()
        .any(|t| t.database == name.database && t.name == name.table)
    {
        return Err(AdminError::invalid(format!("table {name} exists already")));
    }
    next.table.push(TableEntry {
        database: name.database.clone(),
        name: name.table.clone(),
        storage: created.storage.clone(),
        path: created.path.clone(),
        format: created.format,
        partition_columns: Vec::new(),
        description: format!("created by role {}", actor.role),
        tags: Default::default(),
        column_tags: Default::default(),
        column_ids: Default::default(),
    });
    let base = format!("{}_owns_{}_{}", actor.role, name.database, name.table);
    let grant_name = (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => format!("{base}_{n}"),
        })
        .find(|candidate| next.grant.iter().all(|g| &g.name != candidate))
        .expect("some suffix is free");
    next.grant.push(GrantEntry {
        name: grant_name,
        role: actor.role.clone(),
        on: name.to_string(),
        tagged: None,
        privileges: [Privilege::Select, Privilege::Insert]
            .iter()
            .map(|p| p.name().to_string())
            .collect(),
        grantable: true,
        include_columns: None,
        exclude_columns: None,
        row_filter: None,
        masks: Default::default(),
    });
    Ok(Changed {
        content: next,
        summary: format!(
            "table {name} created, owned by role {} (SELECT, INSERT)",
            actor.role
        ),
    })
}
