//! [`Change`]: one administration statement's transaction of the policy
//! store, from the lock and the read of what the store holds to writing
//! exactly what differs, the new policy version and its announcement.

use lakegate_catalog::CatalogFile;
use serde::Serialize;
use sqlx::{Any, Transaction};

use crate::error::StoreError;
use crate::store::{
    Applied, CHANGE_CHANNEL, DATABASES, GRANTS, GROUPS, Kind, LOCATIONS, ROLES, SETTINGS,
    SETTINGS_KEY, StoredCatalog, TABLES, USERS, apply_in, bump_version,
};

/// A change in progress (see [`crate::PolicyStore::begin_change`]): the store is
/// locked against other changes until it is committed or dropped.
pub struct Change {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) shared: bool,
    pub(crate) before: StoredCatalog,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("version", &self.before.version)
            .finish_non_exhaustive()
    }
}

impl Change {
    /// What the store held when the change began.
    pub fn current(&self) -> &StoredCatalog {
        &self.before
    }

    /// Makes the store hold exactly `content`: entries new or different are
    /// written, entries `content` lacks are deleted, and the policy version
    /// is bumped once if anything changed, all in the change's transaction.
    /// A shared store announces the new version on [`CHANGE_CHANNEL`] as it
    /// commits.
    pub async fn commit(mut self, content: &CatalogFile) -> Result<Applied, StoreError> {
        let tx = &mut self.tx;
        // Only what differs from what the store held is written: a grant
        // among 10,000 is one row, not 10,000 comparisons in the database.
        let changed = changed_entries(&self.before.content, content);
        let mut applied = apply_in(tx, &changed).await?;
        let deleted = delete_missing(tx, &self.before.content, content).await?;
        if deleted > 0 && applied.changed == 0 {
            applied.version = bump_version(tx).await?;
        }
        applied.changed += deleted;
        if applied.changed > 0 && self.shared {
            announce(tx, applied.version).await?;
        }
        self.tx.commit().await?;
        Ok(applied)
    }
}

/// Announces `version` on [`CHANGE_CHANNEL`] when `tx` commits (a shared
/// store's other servers listen).
pub(crate) async fn announce(
    tx: &mut Transaction<'_, Any>,
    version: i64,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGE_CHANNEL)
        .bind(version.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The entries of `after` that `before` does not hold as they are (new or
/// different), compared in their stored form.
fn changed_entries(before: &CatalogFile, after: &CatalogFile) -> CatalogFile {
    fn fresh<T: Serialize + Clone>(
        before: &[T],
        after: &[T],
        key: impl Fn(&T) -> Vec<String>,
    ) -> Vec<T> {
        let held: std::collections::BTreeMap<Vec<String>, String> =
            before.iter().map(|e| (key(e), stored_form(e))).collect();
        after
            .iter()
            .filter(|e| held.get(&key(e)) != Some(&stored_form(*e)))
            .cloned()
            .collect()
    }
    let named = |name: &String| vec![name.clone()];
    let settings_changed =
        after.catalog.as_ref().map(stored_form) != before.catalog.as_ref().map(stored_form);
    CatalogFile {
        catalog: after.catalog.clone().filter(|_| settings_changed),
        storage: fresh(&before.storage, &after.storage, |e| named(&e.name)),
        database: fresh(&before.database, &after.database, |e| named(&e.name)),
        table: fresh(&before.table, &after.table, |e| {
            vec![e.database.clone(), e.name.clone()]
        }),
        role: fresh(&before.role, &after.role, |e| named(&e.name)),
        user: fresh(&before.user, &after.user, |e| named(&e.name)),
        group: fresh(&before.group, &after.group, |e| named(&e.name)),
        grant: fresh(&before.grant, &after.grant, |e| named(&e.name)),
    }
}

/// An entry as the store keeps it (JSON).
pub(crate) fn stored_form<T: Serialize>(entry: &T) -> String {
    serde_json::to_string(entry).expect("catalog entries serialize")
}

/// Deletes the entries of `before` that `after` lacks; how many.
async fn delete_missing(
    tx: &mut Transaction<'_, Any>,
    before: &CatalogFile,
    after: &CatalogFile,
) -> Result<usize, StoreError> {
    fn gone<T>(before: &[T], after: &[T], key: impl Fn(&T) -> Vec<String>) -> Vec<Vec<String>> {
        let kept: std::collections::BTreeSet<Vec<String>> = after.iter().map(&key).collect();
        before
            .iter()
            .map(key)
            .filter(|k| !kept.contains(k))
            .collect()
    }
    let named = |name: &String| vec![name.clone()];
    let mut deletions: Vec<(&Kind, Vec<Vec<String>>)> = vec![
        (
            &LOCATIONS,
            gone(&before.storage, &after.storage, |e| named(&e.name)),
        ),
        (
            &DATABASES,
            gone(&before.database, &after.database, |e| named(&e.name)),
        ),
        (
            &TABLES,
            gone(&before.table, &after.table, |e| {
                vec![e.database.clone(), e.name.clone()]
            }),
        ),
        (&ROLES, gone(&before.role, &after.role, |e| named(&e.name))),
        (&USERS, gone(&before.user, &after.user, |e| named(&e.name))),
        (
            &GROUPS,
            gone(&before.group, &after.group, |e| named(&e.name)),
        ),
        (
            &GRANTS,
            gone(&before.grant, &after.grant, |e| named(&e.name)),
        ),
    ];
    if before.catalog.is_some() && after.catalog.is_none() {
        deletions.push((&SETTINGS, vec![vec![SETTINGS_KEY.to_string()]]));
    }
    let mut deleted = 0;
    for (kind, keys) in deletions {
        let condition: Vec<String> = kind
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 1))
            .collect();
        let sql = format!(
            "DELETE FROM {} WHERE {}",
            kind.table,
            condition.join(" AND ")
        );
        for key in keys {
            let mut query = sqlx::query(&sql);
            for value in key {
                query = query.bind(value);
            }
            query.execute(&mut **tx).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
