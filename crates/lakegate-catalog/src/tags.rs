//! The tag sections of a catalog: `[[tag]]` definitions, the `tags` of
//! databases and tables and the `column_tags` of tables, `[[tag_mask]]` and
//! `[[tag_row_filter]]`, checked here for what the catalog knows (unique
//! keys and names, existing databases, tables and columns, built-in masks,
//! expressions that parse) and turned into the policy's [`TagPolicy`]. The
//! policy checks the rest (defined keys and values, known roles).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use lakegate_policy::{
    ColumnMask, MaskKind, TableName, TagDefinition, TagExpr, TagMask, TagPolicy, TagRowFilter,
};

use crate::catalog::{Database, Table};
use crate::files::CatalogFile;
use crate::findings::Findings;

/// The tag policy of a catalog's files, and the file of each entry the
/// policy may report an error about (by the entry as the policy names it:
/// `tag mask 'x'`, `table 'db.t'`, `column 'db.t.c'`, `database 'db'`).
pub(crate) struct LoadedTags {
    pub(crate) policy: TagPolicy,
    pub(crate) files: BTreeMap<String, PathBuf>,
}

pub(crate) fn load_tags(
    findings: &mut Findings,
    files: &[(PathBuf, Arc<CatalogFile>)],
    databases: &BTreeMap<String, Database>,
    tables: &BTreeMap<TableName, Table>,
) -> LoadedTags {
    let mut policy = TagPolicy::default();
    let mut entry_files = BTreeMap::new();
    let mut seen_keys = BTreeMap::new();
    for (file, content) in files {
        for entry in &content.tag {
            if !findings.unique(&mut seen_keys, "tag", &entry.key, file) {
                continue;
            }
            let label = format!("tag '{}'", entry.key);
            if entry.values.is_empty() {
                findings.error(file, &label, "values must name at least one value");
                continue;
            }
            let values: BTreeSet<String> = entry.values.iter().cloned().collect();
            if values.len() < entry.values.len() {
                findings.error(file, &label, "a value is listed twice");
            }
            if values.iter().any(|v| v.is_empty()) {
                findings.error(file, &label, "a value is empty");
            }
            policy.definitions.insert(
                entry.key.clone(),
                TagDefinition {
                    key: entry.key.clone(),
                    values,
                },
            );
        }
    }
    let tagging = &mut policy.tagging;
    for (file, content) in files {
        for entry in &content.database {
            if !entry.tags.is_empty() && databases.contains_key(&entry.name) {
                tagging
                    .databases
                    .insert(entry.name.clone(), entry.tags.clone());
                entry_files.insert(format!("database '{}'", entry.name), file.clone());
            }
        }
        for entry in &content.table {
            let name = TableName::new(&entry.database, &entry.name);
            let Some(table) = tables.get(&name) else {
                // Not loaded: its own error was reported, or its files are
                // unreadable and its columns cannot be checked.
                continue;
            };
            let label = format!("table '{name}'");
            if !entry.tags.is_empty() {
                tagging.tables.insert(name.clone(), entry.tags.clone());
                entry_files.insert(label.clone(), file.clone());
            }
            for (column, tags) in &entry.column_tags {
                let id = entry.column_ids.get(column).copied();
                let Some(current) = current_name(table, column, id) else {
                    let message = match id {
                        Some(id) => format!(
                            "column_tags names column '{column}' (field id {id}), which the \
                             table's files no longer have"
                        ),
                        None => format!("column_tags names unknown column '{column}'"),
                    };
                    findings.error(file, &label, message);
                    continue;
                };
                if tags.is_empty() {
                    continue;
                }
                tagging
                    .columns
                    .entry(name.clone())
                    .or_default()
                    .insert(current.clone(), tags.clone());
                entry_files.insert(format!("column '{name}.{current}'"), file.clone());
            }
        }
    }
    let mut seen_rules = BTreeMap::new();
    for (file, content) in files {
        for entry in &content.tag_mask {
            if !findings.unique(&mut seen_rules, "tag mask", &entry.name, file) {
                continue;
            }
            let label = format!("tag mask '{}'", entry.name);
            let tagged = tag_expr(findings, file, &label, &entry.tagged);
            let mask = match ColumnMask::builtin(&entry.mask) {
                Some(mask) => Some(mask),
                None => {
                    findings.error(
                        file,
                        &label,
                        format!(
                            "unknown mask '{}' (a tag mask is one of the built-in masks: {})",
                            entry.mask,
                            MaskKind::BUILTIN_NAMES.join(", ")
                        ),
                    );
                    None
                }
            };
            if let (Some(tagged), Some(mask)) = (tagged, mask) {
                entry_files.insert(label, file.clone());
                policy.masks.push(TagMask {
                    name: entry.name.clone(),
                    role: entry.role.clone(),
                    tagged,
                    mask,
                });
            }
        }
        for entry in &content.tag_row_filter {
            if !findings.unique(&mut seen_rules, "tag row filter", &entry.name, file) {
                continue;
            }
            let label = format!("tag row filter '{}'", entry.name);
            let Some(tagged) = tag_expr(findings, file, &label, &entry.tagged) else {
                continue;
            };
            if entry.row_filter.trim().is_empty() {
                findings.error(file, &label, "row_filter is empty");
                continue;
            }
            match TagRowFilter::new(&entry.name, &entry.role, tagged, &entry.row_filter) {
                Ok(filter) => {
                    entry_files.insert(label, file.clone());
                    policy.row_filters.push(filter);
                }
                Err(message) => findings.error(file, &label, message),
            }
        }
    }
    LoadedTags {
        policy,
        files: entry_files,
    }
}

/// The current name of the column or nested field a tag assignment names
/// `column` (a dotted path for a nested field), with
/// Parquet field id `id` when it was recorded: the field carrying that id
/// (the column's identity, whatever the files call it now), else the
/// column of that name (files without field ids).
fn current_name(table: &Table, column: &str, id: Option<i32>) -> Option<String> {
    let tree = table.policy_tree();
    if let Some(id) = id {
        if let Some(path) = tree.path_of_field_id(id) {
            return Some(path.to_string());
        }
        if table
            .schema
            .fields()
            .iter()
            .any(|field| field_id(field).is_some())
        {
            // The files carry ids, and none is this column's: it is gone,
            // even if another column now has its name.
            return None;
        }
    }
    tree.find(column).map(|_| column.to_string())
}

/// A field's Parquet field id, when its files carry one.
pub fn field_id(field: &arrow::datatypes::Field) -> Option<i32> {
    field
        .metadata()
        .get(parquet::arrow::PARQUET_FIELD_ID_META_KEY)
        .and_then(|id| id.parse().ok())
}

/// The tag expression `text`, reporting why it does not parse.
pub(crate) fn tag_expr(
    findings: &mut Findings,
    file: &std::path::Path,
    label: &str,
    text: &str,
) -> Option<TagExpr> {
    match text.parse::<TagExpr>() {
        Ok(expr) => Some(expr),
        Err(e) => {
            findings.error(file, label, format!("tagged: {e}"));
            None
        }
    }
}
