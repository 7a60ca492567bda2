//! [`Change`]: one administration statement's transaction of the policy
//! store, from the lock and the read of what the store holds to writing
//! exactly what differs, the new policy version and its announcement.

use std::sync::Arc;

use lakegate_catalog::CatalogFile;
use sqlx::{Any, Transaction};

use crate::error::StoreError;
use crate::sections::{self, for_each_kind};
use crate::store::{Applied, CHANGE_CHANNEL, Known, REMOVALS_KEPT, StoredCatalog, remember};

/// A change in progress (see [`crate::PolicyStore::begin_change`]): the store is
/// locked against other changes until it is committed or dropped.
pub struct Change {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) shared: bool,
    pub(crate) before: StoredCatalog,
    /// What the store handle knows, updated once the change commits.
    pub(crate) known: Known,
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
    /// written, entries `content` lacks are deleted (leaving a tombstone, so
    /// that other servers can read the change alone), and the policy version
    /// is bumped once if anything changed, all in the change's transaction.
    /// A shared store announces the new version on [`CHANGE_CHANNEL`] as it
    /// commits.
    pub async fn commit(
        mut self,
        content: impl Into<Arc<CatalogFile>>,
    ) -> Result<Applied, StoreError> {
        let mut content: Arc<CatalogFile> = content.into();
        let tx = &mut self.tx;
        let version = self.before.version + 1;
        let mut changed = 0;
        // Only what differs from what the store held is written: a grant
        // among 10,000 is one row.
        for_each_kind!(E => {
            changed += sections::write_differences::<E>(tx, &self.before.content, &content, version)
                .await?;
        });
        if changed == 0 {
            return Ok(Applied {
                changed,
                version: self.before.version,
            });
        }
        sqlx::query("UPDATE policy_version SET version = $1 WHERE id = 1")
            .bind(version)
            .execute(&mut **tx)
            .await?;
        forget_old_removals(tx, version).await?;
        if self.shared {
            announce(tx, version).await?;
        }
        self.tx.commit().await?;
        // Kept sorted by key, as a read gives them, for later merges.
        for_each_kind!(E => sections::sort::<E>(&mut content));
        remember(&self.known, &StoredCatalog { content, version });
        Ok(Applied { changed, version })
    }
}

/// Drops the tombstones of versions more than [`REMOVALS_KEPT`] before
/// `version`, recording from which version on removals are still known.
async fn forget_old_removals(
    tx: &mut Transaction<'_, Any>,
    version: i64,
) -> Result<(), StoreError> {
    let horizon = version - REMOVALS_KEPT;
    if horizon <= 0 {
        return Ok(());
    }
    sqlx::query("DELETE FROM policy_removed WHERE removed_at <= $1")
        .bind(horizon)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE policy_version SET removals_since = $1 WHERE id = 1")
        .bind(horizon)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Announces `version` on [`CHANGE_CHANNEL`] when `tx` commits (a shared
/// store's other servers listen).
async fn announce(tx: &mut Transaction<'_, Any>, version: i64) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGE_CHANNEL)
        .bind(version.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
