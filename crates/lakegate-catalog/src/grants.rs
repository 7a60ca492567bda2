//! A grant entry checked against the catalog's roles, databases and tables
//! (its privileges, target, columns and masks) and turned into a policy
//! grant. Row filters and custom masks are checked by the engine, which can
//! plan them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use lakegate_policy::{
    ColumnMask, ColumnSelection, Grant, MaskKind, Privilege, Resource, TableName, path_reaches,
};

use crate::catalog::{Database, Table};
use crate::files::MaskEntry;
use crate::findings::Findings;
use crate::tags::tag_expr;

pub(crate) fn validate_grant(
    findings: &mut Findings,
    file: &Path,
    entry: &crate::files::GrantEntry,
    roles: &BTreeSet<&str>,
    databases: &BTreeMap<String, Database>,
    tables: &BTreeMap<TableName, Table>,
) -> Option<Grant> {
    // Made only when there is something to say: thousands of grants load
    // without one.
    let label = || format!("grant '{}'", entry.name);
    let errors_before = findings.errors.len();
    // The policy refuses a grant of an unknown role too; said here with the
    // grant's other mistakes, as the policy never sees an invalid grant.
    if !roles.contains(entry.role.as_str()) {
        findings.error(file, &label(), format!("unknown role '{}'", entry.role));
    }
    let mut privileges = Vec::new();
    for text in &entry.privileges {
        match Privilege::parse(text) {
            Some(p) => privileges.push(p),
            None => findings.error(
                file,
                &label(),
                format!(
                    "unknown privilege '{text}' (expected select, describe, insert, create_table, \
                     administer or assign)"
                ),
            ),
        }
    }
    if entry.privileges.is_empty() {
        findings.error(
            file,
            &label(),
            "privileges must name at least one of select, describe, insert, create_table, \
             administer, assign",
        );
    }
    let resource = match (&entry.tagged, Resource::parse(&entry.on)) {
        (Some(_), _) if !entry.on.is_empty() => {
            findings.error(file, &label(), "'on' and 'tagged' are exclusive");
            return None;
        }
        (Some(text), _) => Resource::Tagged(tag_expr(findings, file, &label(), text)?),
        (None, Some(resource)) => resource,
        (None, None) => {
            findings.error(
                file,
                &label(),
                format!(
                    "'on = \"{}\"' must be db.table, db.*, * or tag:key (or write 'tagged' instead)",
                    entry.on
                ),
            );
            return None;
        }
    };
    let table = match &resource {
        Resource::AllDatabases | Resource::Tagged(_) | Resource::Tag(_) => None,
        Resource::AllTablesIn(db) => {
            if !databases.contains_key(db) {
                findings.error(file, &label(), format!("unknown database '{db}'"));
            }
            None
        }
        Resource::Table(name) => match tables.get(name) {
            Some(table) => Some(table),
            None => {
                // A table that failed to load was reported already.
                if !databases.contains_key(&name.database) {
                    findings.error(
                        file,
                        &label(),
                        format!("unknown database '{}'", name.database),
                    );
                } else {
                    findings.error(file, &label(), format!("unknown table '{name}'"));
                }
                return None;
            }
        },
    };
    if privileges.contains(&Privilege::Administer) && resource != Resource::AllDatabases {
        findings.error(
            file,
            &label(),
            format!(
                "administer is granted on the whole catalog ('on = \"*\"'), not '{}'",
                resource
            ),
        );
    }
    let columns = match (&entry.include_columns, &entry.exclude_columns) {
        (Some(_), Some(_)) => {
            findings.error(
                file,
                &label(),
                "include_columns and exclude_columns are exclusive",
            );
            ColumnSelection::All
        }
        (Some(include), None) => ColumnSelection::Include(include.clone()),
        (None, Some(exclude)) => ColumnSelection::Exclude(exclude.clone()),
        (None, None) => ColumnSelection::All,
    };
    let single_table_only = !columns.named_columns().is_empty()
        || entry.row_filter.is_some()
        || !entry.masks.is_empty();
    if single_table_only && table.is_none() {
        findings.error(
            file,
            &label(),
            format!(
                "column lists, row filters and masks need a single table, not '{}'",
                resource
            ),
        );
    }
    if let Some(table) = table {
        // Columns, nested fields and the structs holding them may be named.
        let tree = table.policy_tree();
        let policy_columns = tree.leaf_paths();
        let stored = |column: &str| tree.find(column).is_some();
        for column in columns.named_columns() {
            if !stored(column) {
                findings.error(
                    file,
                    &label(),
                    format!("unknown column '{column}' in table {}", table.name),
                );
            }
        }
        if let ColumnSelection::Include(include) = &columns
            && include.is_empty()
        {
            findings.error(file, &label(), "include_columns is empty");
        }
        for column in entry.masks.keys() {
            if !stored(column) {
                findings.error(
                    file,
                    &label(),
                    format!("mask on unknown column '{column}' in table {}", table.name),
                );
            } else if !policy_columns.iter().any(|leaf| {
                path_reaches(column, leaf, &policy_columns) && columns.admits(leaf, &policy_columns)
            }) {
                findings.error(
                    file,
                    &label(),
                    format!("mask on column '{column}', which the grant does not expose"),
                );
            }
        }
    }
    if let Some(filter) = &entry.row_filter
        && filter.trim().is_empty()
    {
        findings.error(file, &label(), "row_filter is empty");
    }
    let mut masks = BTreeMap::new();
    for (column, mask) in &entry.masks {
        let mask = match mask {
            MaskEntry::Builtin(name) => match ColumnMask::builtin(name) {
                Some(mask) => mask,
                None => {
                    findings.error(
                        file,
                        &label(),
                        format!(
                            "unknown mask '{name}' on column '{column}' (built-in masks: {})",
                            MaskKind::BUILTIN_NAMES.join(", ")
                        ),
                    );
                    continue;
                }
            },
            MaskEntry::Custom(custom) => {
                if MaskKind::builtin(&custom.name).is_some() {
                    findings.error(
                        file,
                        &label(),
                        format!(
                            "custom mask on column '{column}' may not reuse the built-in name '{}'",
                            custom.name
                        ),
                    );
                }
                if custom.expression.trim().is_empty() {
                    findings.error(
                        file,
                        &label(),
                        format!("custom mask '{}' has an empty expression", custom.name),
                    );
                }
                ColumnMask {
                    name: custom.name.clone(),
                    kind: MaskKind::Custom {
                        sql: custom.expression.clone(),
                    },
                }
            }
        };
        masks.insert(column.clone(), mask);
    }
    if findings.errors.len() > errors_before {
        return None;
    }
    Some(Grant {
        name: entry.name.clone(),
        role: entry.role.clone(),
        resource,
        privileges,
        grantable: entry.grantable,
        columns,
        row_filter: entry.row_filter.clone(),
        masks,
    })
}
