//! The sections of a catalog as the store keeps them: one table per kind of
//! entry, each row an entry's declarative form (JSON) under its key, with
//! the policy version that last wrote it (`changed_at`). An entry removed
//! leaves a tombstone in `policy_removed` with the version that removed it.
//! Together they let a server read what changed since the version it holds
//! instead of the whole store.
//!
//! Every operation here is written once, generically over [`Entry`], and run
//! for each kind of entry with [`for_each_kind!`].

use std::collections::{BTreeMap, HashMap, HashSet};

use lakegate_catalog::{
    CatalogFile, CatalogSettings, DatabaseEntry, GrantEntry, GroupEntry, RoleEntry, StorageEntry,
    TableEntry, TagEntry, TagMaskEntry, TagRowFilterEntry, UserEntry,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{Any, Row, Transaction};

use crate::error::StoreError;

/// Runs `$body` once for each kind of catalog entry, with `$kind` naming
/// its type (an [`Entry`]).
macro_rules! for_each_kind {
    ($kind:ident => $body:expr) => {
        $crate::sections::for_each_kind!(@each $kind => $body;
            lakegate_catalog::CatalogSettings,
            lakegate_catalog::StorageEntry,
            lakegate_catalog::DatabaseEntry,
            lakegate_catalog::TableEntry,
            lakegate_catalog::RoleEntry,
            lakegate_catalog::UserEntry,
            lakegate_catalog::GroupEntry,
            lakegate_catalog::GrantEntry,
            lakegate_catalog::TagEntry,
            lakegate_catalog::TagMaskEntry,
            lakegate_catalog::TagRowFilterEntry)
    };
    (@each $kind:ident => $body:expr; $($entry:ty),*) => {{
        $({
            type $kind = $entry;
            $body
        })*
    }};
}
pub(crate) use for_each_kind;

/// A kind of catalog entry as the store keeps it.
pub(crate) trait Entry:
    Serialize + DeserializeOwned + Clone + PartialEq + Send + Unpin + 'static
{
    /// What an entry is called in messages.
    const NAME: &'static str;
    /// The table holding them.
    const TABLE: &'static str;
    /// The key columns, in order.
    const KEYS: &'static [&'static str];
    /// The entry's key, one value per key column.
    fn key(&self) -> Vec<String>;
    /// Columns the store looks entries up by, besides the key.
    fn lookup_columns(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// The entries of this kind in `file`.
    fn section(file: &CatalogFile) -> &[Self];
    /// Replaces the entries of this kind in `file`.
    fn set_section(file: &mut CatalogFile, entries: Vec<Self>);
    /// Takes the entries of this kind out of `file`.
    fn take_section(file: &mut CatalogFile) -> Vec<Self>;
}

/// The key the one `[catalog]` section is stored under.
const SETTINGS_KEY: &str = "catalog";

impl Entry for CatalogSettings {
    const NAME: &'static str = "catalog settings";
    const TABLE: &'static str = "policy_settings";
    const KEYS: &'static [&'static str] = &["name"];
    fn key(&self) -> Vec<String> {
        vec![SETTINGS_KEY.to_string()]
    }
    fn section(file: &CatalogFile) -> &[Self] {
        file.catalog.as_slice()
    }
    fn set_section(file: &mut CatalogFile, entries: Vec<Self>) {
        file.catalog = entries.into_iter().next();
    }
    fn take_section(file: &mut CatalogFile) -> Vec<Self> {
        file.catalog.take().into_iter().collect()
    }
}

/// An entry kind keyed by its name, held in a `Vec` section of the file.
macro_rules! named_entry {
    ($type:ty, $name:literal, $table:literal, $field:ident) => {
        impl Entry for $type {
            const NAME: &'static str = $name;
            const TABLE: &'static str = $table;
            const KEYS: &'static [&'static str] = &["name"];
            fn key(&self) -> Vec<String> {
                vec![self.name.clone()]
            }
            fn section(file: &CatalogFile) -> &[Self] {
                &file.$field
            }
            fn set_section(file: &mut CatalogFile, entries: Vec<Self>) {
                file.$field = entries;
            }
            fn take_section(file: &mut CatalogFile) -> Vec<Self> {
                std::mem::take(&mut file.$field)
            }
        }
    };
}

named_entry!(
    StorageEntry,
    "storage location",
    "policy_locations",
    storage
);
named_entry!(DatabaseEntry, "database", "policy_databases", database);
named_entry!(RoleEntry, "role", "policy_roles", role);
named_entry!(UserEntry, "user", "policy_users", user);
named_entry!(GroupEntry, "group", "policy_groups", group);
named_entry!(TagMaskEntry, "tag mask", "policy_tag_masks", tag_mask);
named_entry!(
    TagRowFilterEntry,
    "tag row filter",
    "policy_tag_row_filters",
    tag_row_filter
);

impl Entry for TagEntry {
    const NAME: &'static str = "tag";
    const TABLE: &'static str = "policy_tags";
    const KEYS: &'static [&'static str] = &["tag_key"];
    fn key(&self) -> Vec<String> {
        vec![self.key.clone()]
    }
    fn section(file: &CatalogFile) -> &[Self] {
        &file.tag
    }
    fn set_section(file: &mut CatalogFile, entries: Vec<Self>) {
        file.tag = entries;
    }
    fn take_section(file: &mut CatalogFile) -> Vec<Self> {
        std::mem::take(&mut file.tag)
    }
}

impl Entry for TableEntry {
    const NAME: &'static str = "table";
    const TABLE: &'static str = "policy_tables";
    const KEYS: &'static [&'static str] = &["database_name", "name"];
    fn key(&self) -> Vec<String> {
        vec![self.database.clone(), self.name.clone()]
    }
    fn section(file: &CatalogFile) -> &[Self] {
        &file.table
    }
    fn set_section(file: &mut CatalogFile, entries: Vec<Self>) {
        file.table = entries;
    }
    fn take_section(file: &mut CatalogFile) -> Vec<Self> {
        std::mem::take(&mut file.table)
    }
}

impl Entry for GrantEntry {
    const NAME: &'static str = "grant";
    const TABLE: &'static str = "policy_grants";
    const KEYS: &'static [&'static str] = &["name"];
    fn key(&self) -> Vec<String> {
        vec![self.name.clone()]
    }
    fn lookup_columns(&self) -> Vec<(&'static str, String)> {
        let resource = match &self.tagged {
            Some(expr) => format!("TAGGED {expr}"),
            None => self.on.clone(),
        };
        vec![("role", self.role.clone()), ("resource", resource)]
    }
    fn section(file: &CatalogFile) -> &[Self] {
        &file.grant
    }
    fn set_section(file: &mut CatalogFile, entries: Vec<Self>) {
        file.grant = entries;
    }
    fn take_section(file: &mut CatalogFile) -> Vec<Self> {
        std::mem::take(&mut file.grant)
    }
}

/// An entry as the store keeps it (JSON).
fn stored_form<T: Serialize>(entry: &T) -> String {
    serde_json::to_string(entry).expect("catalog entries serialize")
}

/// The entries of kind `E`: all of them, or (with `since`) those written by
/// a later version, sorted by key.
pub(crate) async fn read<E: Entry>(
    tx: &mut Transaction<'_, Any>,
    since: Option<i64>,
) -> Result<Vec<E>, StoreError> {
    let keys = E::KEYS.join(", ");
    let condition = if since.is_some() {
        " WHERE changed_at > $1"
    } else {
        ""
    };
    let sql = format!("SELECT {keys}, entry FROM {}{condition}", E::TABLE);
    let mut query = sqlx::query(&sql);
    if let Some(since) = since {
        query = query.bind(since);
    }
    let rows: Vec<sqlx::any::AnyRow> = query.fetch_all(&mut **tx).await?;
    let mut entries = rows
        .iter()
        .map(|row| {
            let entry: String = row.try_get("entry")?;
            serde_json::from_str::<E>(&entry).map_err(|e| StoreError::Corrupt {
                kind: E::NAME,
                name: key_of::<E>(row),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<E>, _>>()?;
    // In byte order, whatever the database's collation: a store read whole
    // and one read as changes give equal sections.
    entries.sort_by_cached_key(E::key);
    Ok(entries)
}

/// A row's key, as shown in messages.
fn key_of<E: Entry>(row: &sqlx::any::AnyRow) -> String {
    E::KEYS
        .iter()
        .map(|key| row.try_get::<String, _>(*key).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys of the entries removed by a version after `since`, by table.
pub(crate) async fn removed_since(
    tx: &mut Transaction<'_, Any>,
    since: i64,
) -> Result<BTreeMap<String, Vec<Vec<String>>>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, entry_key FROM policy_removed WHERE removed_at > $1")
            .bind(since)
            .fetch_all(&mut **tx)
            .await?;
    let mut removed: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (kind, key) in rows {
        let key = serde_json::from_str(&key).map_err(|e| StoreError::Corrupt {
            kind: "removed entry",
            name: key.clone(),
            reason: e.to_string(),
        })?;
        removed.entry(kind).or_default().push(key);
    }
    Ok(removed)
}

/// Writes, within `tx`, what differs between the entries of kind `E` in
/// `before` (what the store holds) and `after`: entries new or different
/// are written as of `version`, entries `after` lacks are deleted and leave
/// a tombstone. How many entries were written or deleted.
pub(crate) async fn write_differences<E: Entry>(
    tx: &mut Transaction<'_, Any>,
    before: &CatalogFile,
    after: &CatalogFile,
    version: i64,
) -> Result<usize, StoreError> {
    let held: HashMap<Vec<String>, &E> = E::section(before).iter().map(|e| (e.key(), e)).collect();
    let mut written = 0;
    for entry in E::section(after) {
        if held.get(&entry.key()) != Some(&entry) {
            upsert(tx, entry, version).await?;
            written += 1;
        }
    }
    let kept: HashSet<Vec<String>> = E::section(after).iter().map(E::key).collect();
    for entry in E::section(before) {
        let key = entry.key();
        if !kept.contains(&key) {
            remove::<E>(tx, &key, version).await?;
            written += 1;
        }
    }
    Ok(written)
}

/// Writes `entry` as of `version`, replacing the entry of its key.
async fn upsert<E: Entry>(
    tx: &mut Transaction<'_, Any>,
    entry: &E,
    version: i64,
) -> Result<(), StoreError> {
    let lookups = entry.lookup_columns();
    let names: Vec<&str> = E::KEYS
        .iter()
        .copied()
        .chain(lookups.iter().map(|(name, _)| *name))
        .chain(["entry", "changed_at"])
        .collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = names[E::KEYS.len()..]
        .iter()
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        E::TABLE,
        names.join(", "),
        placeholders.join(", "),
        E::KEYS.join(", "),
        updates.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for value in entry.key() {
        query = query.bind(value);
    }
    for (_, value) in lookups {
        query = query.bind(value);
    }
    query
        .bind(stored_form(entry))
        .bind(version)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the entry of kind `E` under `key`, leaving a tombstone of
/// `version`.
async fn remove<E: Entry>(
    tx: &mut Transaction<'_, Any>,
    key: &[String],
    version: i64,
) -> Result<(), StoreError> {
    let condition: Vec<String> = E::KEYS
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} = ${}", i + 1))
        .collect();
    let sql = format!("DELETE FROM {} WHERE {}", E::TABLE, condition.join(" AND "));
    let mut query = sqlx::query(&sql);
    for value in key {
        query = query.bind(value.clone());
    }
    query.execute(&mut **tx).await?;
    sqlx::query(
        "INSERT INTO policy_removed (kind, entry_key, removed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, entry_key) DO UPDATE SET removed_at = excluded.removed_at",
    )
    .bind(E::TABLE)
    .bind(stored_form(&key))
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Changes applied one by one into a sorted section (a binary search
/// each); more are merged by rebuilding the section.
const FEW_CHANGES: usize = 64;

/// `content`'s entries of kind `E` (sorted by key) with those of `removed`
/// keys taken out and `changed` ones put in (replacing any of the same
/// key), still sorted. Removals go first: an entry removed and made again
/// is in `changed`.
pub(crate) fn merge<E: Entry>(
    content: &mut CatalogFile,
    changed: &CatalogFile,
    removed: &BTreeMap<String, Vec<Vec<String>>>,
) {
    let removed = removed.get(E::TABLE).map_or(&[][..], Vec::as_slice);
    let changed = E::section(changed);
    if removed.is_empty() && changed.is_empty() {
        return;
    }
    let mut entries = E::take_section(content);
    if removed.len() + changed.len() <= FEW_CHANGES {
        let find =
            |entries: &[E], key: &Vec<String>| entries.binary_search_by(|e| e.key().cmp(key));
        for key in removed {
            if let Ok(i) = find(&entries, key) {
                entries.remove(i);
            }
        }
        for entry in changed {
            match find(&entries, &entry.key()) {
                Ok(i) => entries[i] = entry.clone(),
                Err(i) => entries.insert(i, entry.clone()),
            }
        }
    } else {
        let mut by_key: BTreeMap<Vec<String>, E> =
            entries.into_iter().map(|e| (e.key(), e)).collect();
        for key in removed {
            by_key.remove(key);
        }
        for entry in changed {
            by_key.insert(entry.key(), entry.clone());
        }
        entries = by_key.into_values().collect();
    }
    E::set_section(content, entries);
}

/// Sorts `content`'s entries of kind `E` by key, if they are not.
pub(crate) fn sort<E: Entry>(content: &mut std::sync::Arc<CatalogFile>) {
    let sorted = E::section(content)
        .windows(2)
        .all(|pair| pair[0].key() <= pair[1].key());
    if !sorted {
        let content = std::sync::Arc::make_mut(content);
        let mut entries = E::take_section(content);
        entries.sort_by_cached_key(E::key);
        E::set_section(content, entries);
    }
}

/// `content`'s entries of kind `E` with those of `overlay` put in, replacing
/// any of the same key; the others kept.
pub(crate) fn overlay<E: Entry>(content: &mut CatalogFile, overlay: &CatalogFile) {
    merge::<E>(content, overlay, &BTreeMap::new());
}
