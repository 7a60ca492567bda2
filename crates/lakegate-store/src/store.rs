//! [`PolicyStore`]: the catalog's content in a database, with its policy
//! version.

use std::sync::{Arc, Mutex};

use lakegate_catalog::{CatalogFile, GrantEntry, RoleEntry, UserEntry};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

use crate::change::Change;
use crate::error::StoreError;
use crate::migrations::migrate;
use crate::sections::{self, for_each_kind};

/// The role [`PolicyStore::bootstrap_admin`] creates.
pub const ADMIN_ROLE: &str = "lake_admin";

/// Connections a server keeps to its store: policy reads are rare (at start
/// and after a change), so a few suffice.
const MAX_CONNECTIONS: u32 = 4;

/// A policy store: SQLite (`sqlite://PATH`, one server) or PostgreSQL
/// (`postgres://...`, a fleet of servers sharing it), behind one interface.
/// Every change is one transaction that bumps the policy version.
#[derive(Clone)]
pub struct PolicyStore {
    pool: AnyPool,
    /// The URL as connected to (with its password): for the listener.
    connect: String,
    /// The URL without its password, for messages.
    shown: String,
    /// Whether servers share it (PostgreSQL).
    shared: bool,
    /// The newest content this handle has read or written: a read brings it
    /// up to date with what changed since, instead of reading everything.
    known: Known,
}

/// The newest [`StoredCatalog`] a store handle knows, shared by its clones.
pub(crate) type Known = Arc<Mutex<Option<StoredCatalog>>>;

impl std::fmt::Debug for PolicyStore {
    // Never the connection URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// What a store holds: the catalog, as the sections of a catalog file, and
/// the policy version it is at.
#[derive(Debug, Clone)]
pub struct StoredCatalog {
    /// Every entry, each section sorted by key (shared with the store
    /// handle's cache: copy it to change it).
    pub content: Arc<CatalogFile>,
    /// The policy version: bumped by every change.
    pub version: i64,
}

/// What [`PolicyStore::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Entries added or changed (0: the store held them already).
    pub changed: usize,
    /// The policy version after the change.
    pub version: i64,
}

/// The PostgreSQL channel every committed change is announced on, with the
/// new policy version as payload (servers of a fleet LISTEN to it).
pub const CHANGE_CHANNEL: &str = "lakegate_policy";

/// How many users the store holds.
const USER_COUNT: &str = "SELECT COUNT(*) FROM policy_users";

/// The policy version's query, with the oldest version whose removals the
/// store still has.
const VERSION: &str = "SELECT version, removals_since FROM policy_version WHERE id = 1";

/// How many versions back the store keeps the removals of: a server that
/// was behind by more reads the whole store once.
pub const REMOVALS_KEPT: i64 = 10_000;

impl PolicyStore {
    /// Opens the store at `url`, creating a SQLite file that does not exist
    /// yet, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (connect, shown) = connect_url(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect(&connect)
            .await
            .map_err(|e| StoreError::Database(format!("cannot open {shown}: {e}")))?;
        let shared = !url.starts_with("sqlite://");
        migrate(&pool, shared).await?;
        Ok(Self {
            pool,
            connect,
            shown,
            shared,
            known: Arc::default(),
        })
    }

    /// The connection pool, for the store's other modules.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The store's URL, without its password.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The current policy version.
    pub async fn version(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM policy_version WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Whether the store holds no user at all (a new store).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar(USER_COUNT).fetch_one(&self.pool).await?;
        Ok(count > 0)
    }

    /// Everything the store holds, as of one version. Read as the changes
    /// since the version this handle read or wrote last, when the store
    /// still has them (it keeps removals for [`REMOVALS_KEPT`] versions);
    /// whole otherwise.
    pub async fn load(&self) -> Result<StoredCatalog, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.shared {
            // One snapshot for every table read, as of the version read
            // first, whatever other servers commit meanwhile.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let stored = self.read_in(&mut tx).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Writes every entry of `content` into the store, replacing stored
    /// entries of the same name and keeping the others (entries made at
    /// runtime stay), in one transaction. Entries the store holds already
    /// change nothing; if any is new or different, the policy version is
    /// bumped once. Applying the same catalog again is a no-op.
    pub async fn apply(&self, content: &CatalogFile) -> Result<Applied, StoreError> {
        let change = self.begin_change().await?;
        let after = overlaid(&change.current().content, content);
        change.commit(after).await
    }

    /// Starts a change: locks the store against every other change (the
    /// policy version's row, in SQLite the whole database) and reads what it
    /// holds. [`Change::commit`] writes the new content; dropping the change
    /// leaves the store as it was.
    pub async fn begin_change(&self) -> Result<Change, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_changes(&mut tx).await?;
        let stored = self.read_in(&mut tx).await?;
        Ok(Change {
            tx,
            shared: self.shared,
            before: stored,
            known: Arc::clone(&self.known),
        })
    }

    /// What the store holds, within `tx`, brought up to date from what this
    /// handle knows (see [`PolicyStore::load`]).
    async fn read_in(&self, tx: &mut Transaction<'_, Any>) -> Result<StoredCatalog, StoreError> {
        let (version, removals_since): (i64, i64) =
            sqlx::query_as(VERSION).fetch_one(&mut **tx).await?;
        let known = self.known.lock().expect("never poisoned").clone();
        let stored = match known {
            Some(known) if known.version == version => return Ok(known),
            Some(known) if known.version < version && known.version >= removals_since => {
                let changed = read_sections(tx, Some(known.version)).await?;
                let removed = sections::removed_since(tx, known.version).await?;
                let mut content = (*known.content).clone();
                for_each_kind!(E => sections::merge::<E>(&mut content, &changed, &removed));
                StoredCatalog {
                    content: Arc::new(content),
                    version,
                }
            }
            _ => StoredCatalog {
                content: Arc::new(read_sections(tx, None).await?),
                version,
            },
        };
        remember(&self.known, &stored);
        Ok(stored)
    }

    /// Whether servers share this store (PostgreSQL), so that a change made
    /// by one must reach the others.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The store's change announcements, for a store servers share:
    /// a stream of policy versions, one per committed change (see
    /// [`CHANGE_CHANNEL`]). `None` for SQLite (one server).
    pub async fn listen(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        if !self.shared {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.connect)
            .await
            .map_err(|e| StoreError::Database(format!("cannot listen on {}: {e}", self.shown)))?;
        listener.listen(CHANGE_CHANNEL).await?;
        Ok(Some(listener))
    }

    /// Creates the first administrator of a store that has no user: role
    /// [`ADMIN_ROLE`], holding select and describe on everything with grant
    /// option, and `user` (whose password hash is `password_hash`) who may
    /// assume it and does by default. Refused if the store has any user.
    pub async fn bootstrap_admin(
        &self,
        user: &str,
        password_hash: &str,
    ) -> Result<i64, StoreError> {
        // Checked and created in one transaction, holding the lock every
        // change takes: servers starting at once on a new store create one
        // administrator, the first.
        let change = self.begin_change().await?;
        if !change.current().content.user.is_empty() {
            return Err(StoreError::Database(format!(
                "{} has users already: the first administrator is created only in an empty store",
                self.shown
            )));
        }
        let after = overlaid(
            &change.current().content,
            &first_administrator(user, password_hash),
        );
        Ok(change.commit(after).await?.version)
    }
}

/// Takes, within `tx`, the lock every change holds: a write first (SQLite's
/// write lock, PostgreSQL's row lock on the version), so that no two
/// changes read the same version and both commit.
pub(crate) async fn lock_changes(tx: &mut Transaction<'_, Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE policy_version SET version = version WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The entries of every kind: all of them, or those written after `since`.
async fn read_sections(
    tx: &mut Transaction<'_, Any>,
    since: Option<i64>,
) -> Result<CatalogFile, StoreError> {
    let mut content = CatalogFile::default();
    for_each_kind!(E => {
        let entries = sections::read::<E>(tx, since).await?;
        <E as sections::Entry>::set_section(&mut content, entries);
    });
    Ok(content)
}

/// `current` with every entry of `overlay` put in, replacing the entry of
/// the same key; the others kept.
fn overlaid(current: &CatalogFile, overlay: &CatalogFile) -> CatalogFile {
    let mut after = current.clone();
    for_each_kind!(E => sections::overlay::<E>(&mut after, overlay));
    after
}

/// Records `stored` as what the handle sharing `known` knows, unless it
/// knows a newer version already.
pub(crate) fn remember(known: &Known, stored: &StoredCatalog) {
    let mut known = known.lock().expect("never poisoned");
    if known.as_ref().is_none_or(|k| k.version < stored.version) {
        *known = Some(stored.clone());
    }
}

/// The catalog sections of a first administrator (see
/// [`PolicyStore::bootstrap_admin`]).
fn first_administrator(user: &str, password_hash: &str) -> CatalogFile {
    CatalogFile {
        role: vec![RoleEntry {
            name: ADMIN_ROLE.into(),
            description: "lake administrator: administers the catalog, reads every table, all with grant option".into(),
        }],
        user: vec![UserEntry {
            name: user.into(),
            password_hash: password_hash.into(),
            groups: Vec::new(),
            may_assume: vec![ADMIN_ROLE.into()],
            default_role: Some(ADMIN_ROLE.into()),
        }],
        grant: vec![GrantEntry {
            name: format!("{ADMIN_ROLE}_everything"),
            role: ADMIN_ROLE.into(),
            on: "*".into(),
            tagged: None,
            privileges: vec!["select".into(), "describe".into(), "administer".into()],
            grantable: true,
            include_columns: None,
            exclude_columns: None,
            row_filter: None,
            masks: Default::default(),
        }],
        ..CatalogFile::default()
    }
}

/// The URL sqlx connects with, and the URL as shown (password removed).
fn connect_url(url: &str) -> Result<(String, String), StoreError> {
    let invalid = |reason: &str| StoreError::Url {
        url: without_password(url),
        reason: reason.into(),
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(invalid("no file path (write sqlite://PATH)"));
        }
        // Created if missing; a file, never an in-memory database.
        let connect = if path.contains('?') {
            url.to_string()
        } else {
            format!("{url}?mode=rwc")
        };
        return Ok((connect, url.to_string()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_string(), without_password(url)));
    }
    Err(invalid("a store is sqlite://PATH or postgres://..."))
}

/// `url` with the password of its user info replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let password = if user_info.contains(':') { ":***" } else { "" };
            let path = if rest.contains('/') {
                format!("/{path}")
            } else {
                String::new()
            };
            format!("{scheme}://{user}{password}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            without_password("postgres://lake:s3cret@db.internal:5432/policy"),
            "postgres://lake:***@db.internal:5432/policy"
        );
        assert_eq!(
            without_password("postgres://lake@db/policy"),
            "postgres://lake@db/policy"
        );
        assert_eq!(without_password("postgres://db"), "postgres://db");
        let error = connect_url("mysql://root:pw@db/x").unwrap_err().to_string();
        assert!(error.contains("mysql://root:***@db/x"), "{error}");
        assert!(!error.contains("pw"), "{error}");
    }
}
