//! What the tag statements do to the catalog's content: tag definitions
//! (`CREATE TAG`, `DROP TAG`), tags on databases, tables and columns
//! (`ALTER ... SET TAGS`, `UNSET TAGS`), and the masks and row filters
//! attached to tag expressions (`MASK COLUMNS TAGGED`, `ROW FILTER ON
//! TAGGED`, `DROP MASK`, `DROP ROW FILTER`). Tags reach tables and columns
//! present and future, so every tag statement needs `ADMINISTER`, but for
//! setting and unsetting a key, which `ASSIGN ON TAG key` allows (a data
//! steward's privilege, granted per key). As with
//! every change, the administration then checks the whole new catalog
//! (defined keys and values, existing columns, filters that plan) before
//! committing it.

use lakegate_catalog::{CatalogFile, TagEntry, TagMaskEntry, TagRowFilterEntry, field_id};
use lakegate_policy::{MaskKind, TableName};

use crate::changes::present;
use crate::error::AdminError;
use crate::rights::Rights;
use crate::statement::{AdminStatement, TagTarget};

/// Applies `statement` to `next` when it is a tag statement: what it did,
/// in words, or `None` when it is another kind of statement.
pub(crate) fn apply_tag_change(
    statement: &AdminStatement,
    rights: &Rights<'_>,
    next: &mut CatalogFile,
) -> Result<Option<String>, AdminError> {
    let summary = match statement {
        AdminStatement::CreateTag {
            key,
            values,
            comment,
        } => {
            rights.administer()?;
            if next.tag.iter().any(|t| &t.key == key) {
                return Err(AdminError::invalid(format!("tag {key} exists already")));
            }
            next.tag.push(TagEntry {
                key: key.clone(),
                values: values.clone(),
                description: comment.clone(),
            });
            format!("tag {key} created with {} value(s)", values.len())
        }
        AdminStatement::DropTag(key) => {
            rights.administer()?;
            present(&next.tag, |t| &t.key, key, "tag")?;
            let assigned = assignments_of(next, key);
            if !assigned.is_empty() {
                return Err(AdminError::invalid(format!(
                    "tag {key} is still set on {}: UNSET it first",
                    assigned.join(", ")
                )));
            }
            next.tag.retain(|t| &t.key != key);
            format!("tag {key} dropped")
        }
        AdminStatement::SetTags { on, tags } => {
            may_assign(rights, tags.iter().map(|(key, _)| key))?;
            let own = tags_of(next, on)?;
            for (key, value) in tags {
                own.insert(key.clone(), value.clone());
            }
            if let TagTarget::Column(table, column) = on {
                record_column_id(rights, next, table, column)?;
            }
            format!("{} tag(s) set on {on}", tags.len())
        }
        AdminStatement::UnsetTags { on, keys } => {
            may_assign(rights, keys)?;
            let own = tags_of(next, on)?;
            for key in keys {
                if own.remove(key).is_none() {
                    return Err(AdminError::invalid(format!(
                        "{on} carries no tag {key} of its own"
                    )));
                }
            }
            if let TagTarget::Column(table, column) = on {
                drop_empty_column_tags(next, table, column);
            }
            format!("{} tag(s) unset from {on}", keys.len())
        }
        AdminStatement::CreateTagMask {
            tagged,
            mask,
            role,
            name,
        } => {
            rights.administer()?;
            present(&next.role, |r| &r.name, role, "role")?;
            if MaskKind::builtin(mask).is_none() {
                return Err(AdminError::invalid(format!(
                    "unknown mask {mask} (a tag mask is one of the built-in masks: {})",
                    MaskKind::BUILTIN_NAMES.join(", ")
                )));
            }
            let name = fresh_name(next, name.as_deref(), &format!("{role}_mask"))?;
            next.tag_mask.push(TagMaskEntry {
                name: name.clone(),
                role: role.clone(),
                tagged: tagged.to_string(),
                mask: mask.clone(),
            });
            format!("mask {name} on columns tagged {tagged} for role {role}")
        }
        AdminStatement::CreateTagRowFilter {
            tagged,
            role,
            row_filter,
            name,
        } => {
            rights.administer()?;
            present(&next.role, |r| &r.name, role, "role")?;
            let name = fresh_name(next, name.as_deref(), &format!("{role}_row_filter"))?;
            next.tag_row_filter.push(TagRowFilterEntry {
                name: name.clone(),
                role: role.clone(),
                tagged: tagged.to_string(),
                row_filter: row_filter.clone(),
            });
            format!("row filter {name} on tables tagged {tagged} for role {role}")
        }
        AdminStatement::DropTagMask(name) => {
            rights.administer()?;
            present(&next.tag_mask, |m| &m.name, name, "mask")?;
            next.tag_mask.retain(|m| &m.name != name);
            format!("mask {name} dropped")
        }
        AdminStatement::DropTagRowFilter(name) => {
            rights.administer()?;
            present(&next.tag_row_filter, |f| &f.name, name, "row filter")?;
            next.tag_row_filter.retain(|f| &f.name != name);
            format!("row filter {name} dropped")
        }
        _ => return Ok(None),
    };
    Ok(Some(summary))
}

/// Refused unless the caller administers the catalog or holds `ASSIGN` on
/// every one of `keys` (a steward sets only the tags it was given).
fn may_assign<'k>(
    rights: &Rights<'_>,
    keys: impl IntoIterator<Item = &'k String>,
) -> Result<(), AdminError> {
    let role = &rights.actor.role;
    let policy = &rights.served.policy;
    if policy.may_administer(role, false) {
        return Ok(());
    }
    for key in keys {
        if !policy.may_assign(role, key, false) {
            return Err(rights.missing(&format!("ASSIGN ON TAG {key} (or ADMINISTER)")));
        }
    }
    Ok(())
}

/// The own tags of `on` in `next`, to change.
fn tags_of<'a>(
    next: &'a mut CatalogFile,
    on: &TagTarget,
) -> Result<&'a mut std::collections::BTreeMap<String, String>, AdminError> {
    match on {
        TagTarget::Database(name) => next
            .database
            .iter_mut()
            .find(|d| &d.name == name)
            .map(|d| &mut d.tags)
            .ok_or_else(|| AdminError::invalid(format!("there is no database {name}"))),
        TagTarget::Table(table) => table_entry(next, table).map(|t| &mut t.tags),
        TagTarget::Column(table, column) => {
            let entry = table_entry(next, table)?;
            Ok(entry.column_tags.entry(column.clone()).or_default())
        }
    }
}

fn table_entry<'a>(
    next: &'a mut CatalogFile,
    table: &TableName,
) -> Result<&'a mut lakegate_catalog::TableEntry, AdminError> {
    next.table
        .iter_mut()
        .find(|t| t.database == table.database && t.name == table.table)
        .ok_or_else(|| AdminError::invalid(format!("there is no table {table}")))
}

/// Removes a column's tag entry (and its recorded id) once it holds no tag.
fn drop_empty_column_tags(next: &mut CatalogFile, table: &TableName, column: &str) {
    if let Ok(entry) = table_entry(next, table)
        && entry.column_tags.get(column).is_some_and(|t| t.is_empty())
    {
        entry.column_tags.remove(column);
        entry.column_ids.remove(column);
    }
}

/// Records the Parquet field id of `column` (a column or a nested field's
/// dotted path, as the served table's files give it), so that its tags follow the column when the files rename it.
/// A column the served table does not have is refused by name.
fn record_column_id(
    rights: &Rights<'_>,
    next: &mut CatalogFile,
    table: &TableName,
    column: &str,
) -> Result<(), AdminError> {
    let Some(served) = rights.served.table(table) else {
        return Ok(()); // created in this change: checked when the catalog loads
    };
    let tree = served.policy_tree();
    let node = tree
        .find(column)
        .ok_or_else(|| AdminError::invalid(format!("table {table} has no column {column}")))?;
    if let Some(id) = field_id(&node.field) {
        table_entry(next, table)?
            .column_ids
            .insert(column.to_string(), id);
    }
    Ok(())
}

/// Where tag `key` is set, as `database tpc`, `table tpc.t`, `column tpc.t.c`.
fn assignments_of(content: &CatalogFile, key: &str) -> Vec<String> {
    let mut places = Vec::new();
    for database in &content.database {
        if database.tags.contains_key(key) {
            places.push(format!("database {}", database.name));
        }
    }
    for table in &content.table {
        if table.tags.contains_key(key) {
            places.push(format!("table {}.{}", table.database, table.name));
        }
        for (column, tags) in &table.column_tags {
            if tags.contains_key(key) {
                places.push(format!("column {}.{}.{column}", table.database, table.name));
            }
        }
    }
    places
}

/// `given`, refused when taken, or `base`, `base_2`, ... : names are unique
/// among grants, tag masks and tag row filters.
fn fresh_name(
    content: &CatalogFile,
    given: Option<&str>,
    base: &str,
) -> Result<String, AdminError> {
    let taken = |name: &str| {
        content.grant.iter().any(|g| g.name == name)
            || content.tag_mask.iter().any(|m| m.name == name)
            || content.tag_row_filter.iter().any(|f| f.name == name)
    };
    if let Some(name) = given {
        if taken(name) {
            return Err(AdminError::invalid(format!(
                "{name} names a grant, mask or row filter already"
            )));
        }
        return Ok(name.to_string());
    }
    Ok(std::iter::once(base.to_string())
        .chain((2..).map(|n| format!("{base}_{n}")))
        .find(|name| !taken(name))
        .expect("some suffix is free"))
}
