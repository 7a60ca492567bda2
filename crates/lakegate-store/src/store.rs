//! [`PolicyStore`]: the catalog's content in a database, with its policy
//! version.

use lakegate_catalog::{
    CatalogFile, CatalogSettings, DatabaseEntry, GrantEntry, GroupEntry, RoleEntry, StorageEntry,
    TableEntry, UserEntry,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

use crate::change::{Change, announce, stored_form};
use crate::error::StoreError;
use crate::migrations::migrate;

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
}

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
#[derive(Debug)]
pub struct StoredCatalog {
    /// Every entry, each section sorted by name.
    pub content: CatalogFile,
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

/// One kind of entry: its table and how a row is keyed (text columns).
pub(crate) struct Kind {
    pub(crate) name: &'static str,
    pub(crate) table: &'static str,
    /// The key columns, in order.
    pub(crate) keys: &'static [&'static str],
}

impl Kind {
    /// A kind keyed by its entries' names.
    const fn named(name: &'static str, table: &'static str) -> Self {
        Self {
            name,
            table,
            keys: &["name"],
        }
    }
}

/// The one `[catalog]` section, stored under this name.
pub(crate) const SETTINGS_KEY: &str = "catalog";
pub(crate) const SETTINGS: Kind = Kind::named("catalog settings", "policy_settings");
pub(crate) const LOCATIONS: Kind = Kind::named("storage location", "policy_locations");
pub(crate) const DATABASES: Kind = Kind::named("database", "policy_databases");
pub(crate) const TABLES: Kind = Kind {
    name: "table",
    table: "policy_tables",
    keys: &["database_name", "name"],
};
pub(crate) const ROLES: Kind = Kind::named("role", "policy_roles");
pub(crate) const USERS: Kind = Kind::named("user", "policy_users");
pub(crate) const GROUPS: Kind = Kind::named("group", "policy_groups");
pub(crate) const GRANTS: Kind = Kind::named("grant", "policy_grants");

/// The PostgreSQL channel every committed change is announced on, with the
/// new policy version as payload (servers of a fleet LISTEN to it).
pub const CHANGE_CHANNEL: &str = "lakegate_policy";

/// How many users the store holds.
const USER_COUNT: &str = "SELECT COUNT(*) FROM policy_users";

/// The policy version's query.
const VERSION: &str = "SELECT version FROM policy_version WHERE id = 1";

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
        })
    }

    /// The store's URL, without its password.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The current policy version.
    pub async fn version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(VERSION).fetch_one(&self.pool).await?)
    }

    /// Whether the store holds no user at all (a new store).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar(USER_COUNT).fetch_one(&self.pool).await?;
        Ok(count > 0)
    }

    /// Everything the store holds, read in one transaction (one version).
    pub async fn load(&self) -> Result<StoredCatalog, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = load_in(&mut tx).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Writes every entry of `content` into the store, replacing stored
    /// entries of the same name and keeping the others (entries made at
    /// runtime stay), in one transaction. Entries the store holds already
    /// change nothing; if any is new or different, the policy version is
    /// bumped once. Applying the same catalog again is a no-op.
    pub async fn apply(&self, content: &CatalogFile) -> Result<Applied, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_changes(&mut tx).await?;
        let applied = apply_in(&mut tx, content).await?;
        if applied.changed > 0 && self.shared {
            announce(&mut tx, applied.version).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Starts a change: locks the store against every other change (the
    /// policy version's row, in SQLite the whole database) and reads what it
    /// holds. [`Change::commit`] writes the new content; dropping the change
    /// leaves the store as it was.
    pub async fn begin_change(&self) -> Result<Change, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_changes(&mut tx).await?;
        let stored = load_in(&mut tx).await?;
        Ok(Change {
            tx,
            shared: self.shared,
            before: stored,
        })
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
        let mut tx = self.pool.begin().await?;
        lock_changes(&mut tx).await?;
        let users: i64 = sqlx::query_scalar(USER_COUNT).fetch_one(&mut *tx).await?;
        if users > 0 {
            return Err(StoreError::Database(format!(
                "{} has users already: the first administrator is created only in an empty store",
                self.shown
            )));
        }
        let content = first_administrator(user, password_hash);
        let applied = apply_in(&mut tx, &content).await?;
        tx.commit().await?;
        Ok(applied.version)
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

/// Everything the store holds, within `tx`.
pub(crate) async fn load_in(tx: &mut Transaction<'_, Any>) -> Result<StoredCatalog, StoreError> {
    let version = current_version(tx).await?;
    let content = CatalogFile {
        catalog: read_all::<CatalogSettings>(tx, &SETTINGS)
            .await?
            .into_iter()
            .next(),
        storage: read_all::<StorageEntry>(tx, &LOCATIONS).await?,
        database: read_all::<DatabaseEntry>(tx, &DATABASES).await?,
        table: read_all::<TableEntry>(tx, &TABLES).await?,
        role: read_all::<RoleEntry>(tx, &ROLES).await?,
        user: read_all::<UserEntry>(tx, &USERS).await?,
        group: read_all::<GroupEntry>(tx, &GROUPS).await?,
        grant: read_all::<GrantEntry>(tx, &GRANTS).await?,
    };
    Ok(StoredCatalog { content, version })
}

/// [`PolicyStore::apply`] within `tx`.
pub(crate) async fn apply_in(
    tx: &mut Transaction<'_, Any>,
    content: &CatalogFile,
) -> Result<Applied, StoreError> {
    let mut changed = 0;
    if let Some(settings) = &content.catalog {
        changed += upsert(tx, &SETTINGS, &[SETTINGS_KEY], &[], settings).await?;
    }
    for entry in &content.storage {
        changed += upsert(tx, &LOCATIONS, &[&entry.name], &[], entry).await?;
    }
    for entry in &content.database {
        changed += upsert(tx, &DATABASES, &[&entry.name], &[], entry).await?;
    }
    for entry in &content.table {
        let keys = [entry.database.as_str(), entry.name.as_str()];
        changed += upsert(tx, &TABLES, &keys, &[], entry).await?;
    }
    for entry in &content.role {
        changed += upsert(tx, &ROLES, &[&entry.name], &[], entry).await?;
    }
    for entry in &content.user {
        changed += upsert(tx, &USERS, &[&entry.name], &[], entry).await?;
    }
    for entry in &content.group {
        changed += upsert(tx, &GROUPS, &[&entry.name], &[], entry).await?;
    }
    for entry in &content.grant {
        let columns = [("role", entry.role.clone()), ("resource", entry.on.clone())];
        changed += upsert(tx, &GRANTS, &[&entry.name], &columns, entry).await?;
    }
    let version = if changed > 0 {
        bump_version(tx).await?
    } else {
        current_version(tx).await?
    };
    Ok(Applied { changed, version })
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

/// Every entry of `kind`, sorted by key.
async fn read_all<T: DeserializeOwned>(
    tx: &mut Transaction<'_, Any>,
    kind: &Kind,
) -> Result<Vec<T>, StoreError> {
    let order = kind.keys.join(", ");
    let sql = format!("SELECT {order}, entry FROM {} ORDER BY {order}", kind.table);
    let rows: Vec<sqlx::any::AnyRow> = sqlx::query(&sql).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|row| {
            use sqlx::Row;
            let entry: String = row.try_get("entry")?;
            serde_json::from_str(&entry).map_err(|e| StoreError::Corrupt {
                kind: kind.name,
                name: key_of(row, kind),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// A row's key, as shown in messages.
fn key_of(row: &sqlx::any::AnyRow, kind: &Kind) -> String {
    use sqlx::Row;
    kind.keys
        .iter()
        .map(|key| row.try_get::<String, _>(*key).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(".")
}

/// Writes `entry` under `keys` (with the extra `columns`) unless the store
/// holds it already; 1 if it wrote, 0 if not.
async fn upsert<T: Serialize>(
    tx: &mut Transaction<'_, Any>,
    kind: &Kind,
    keys: &[&str],
    columns: &[(&str, String)],
    entry: &T,
) -> Result<usize, StoreError> {
    let json = stored_form(entry);
    let key_is = |i: usize, key: &str| format!("{key} = ${}", i + 1);
    let condition: Vec<String> = kind
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| key_is(i, k))
        .collect();
    let select = format!(
        "SELECT entry FROM {} WHERE {}",
        kind.table,
        condition.join(" AND ")
    );
    let mut query = sqlx::query_scalar::<_, String>(&select);
    for value in keys {
        query = query.bind(value.to_string());
    }
    if query.fetch_optional(&mut **tx).await?.as_deref() == Some(json.as_str()) {
        return Ok(0);
    }
    let names: Vec<&str> = kind
        .keys
        .iter()
        .copied()
        .chain(columns.iter().map(|(name, _)| *name))
        .chain(["entry"])
        .collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = names[kind.keys.len()..]
        .iter()
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    let upsert = format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        kind.table,
        names.join(", "),
        placeholders.join(", "),
        kind.keys.join(", "),
        updates.join(", ")
    );
    let mut query = sqlx::query(&upsert);
    for value in keys {
        query = query.bind(value.to_string());
    }
    for (_, value) in columns {
        query = query.bind(value.clone());
    }
    query.bind(json).execute(&mut **tx).await?;
    Ok(1)
}

async fn current_version(tx: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(VERSION).fetch_one(&mut **tx).await?)
}

/// Bumps the policy version within `tx`, returning the new one.
pub(crate) async fn bump_version(tx: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
    sqlx::query("UPDATE policy_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    current_version(tx).await
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
