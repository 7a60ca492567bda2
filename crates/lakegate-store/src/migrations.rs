//! The store's schema, as an ordered list of versioned migrations applied at
//! open: each runs once, in its own transaction, and records its number in
//! `store_schema`. The SQL is the common subset of SQLite and PostgreSQL
//! (`TEXT`, `BIGINT`, `ON CONFLICT`), so one list serves both.
//!
//! Every catalog entry is kept as its declarative form in JSON (`entry`),
//! beside the columns the store looks entries up by: what a row holds is
//! exactly what a `[[...]]` section of a catalog file holds, so that loading
//! the store and loading a catalog directory go through the same checks.

use sqlx::{Any, Transaction};

use crate::error::StoreError;

/// The migrations, in order; a migration's number is its position plus one.
/// Never edit one that has shipped: add the next.
const MIGRATIONS: &[&[&str]] = &[
    // 1: the catalog's sections, each entry as JSON under its key.
    &[
        "CREATE TABLE policy_version (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)",
        "INSERT INTO policy_version (id, version) VALUES (1, 0)",
        "CREATE TABLE policy_settings (name TEXT PRIMARY KEY, entry TEXT NOT NULL)",
        "CREATE TABLE policy_locations (name TEXT PRIMARY KEY, entry TEXT NOT NULL)",
        "CREATE TABLE policy_databases (name TEXT PRIMARY KEY, entry TEXT NOT NULL)",
        "CREATE TABLE policy_tables (database_name TEXT NOT NULL, name TEXT NOT NULL, \
     entry TEXT NOT NULL, PRIMARY KEY (database_name, name))",
        "CREATE TABLE policy_roles (name TEXT PRIMARY KEY, entry TEXT NOT NULL)",
        "CREATE TABLE policy_users (name TEXT PRIMARY KEY, entry TEXT NOT NULL)",
        "CREATE TABLE policy_groups (name TEXT PRIMARY KEY, entry TEXT NOT NULL)",
        "CREATE TABLE policy_grants (name TEXT PRIMARY KEY, role TEXT NOT NULL, \
     resource TEXT NOT NULL, entry TEXT NOT NULL)",
    ],
    // 2: what changed since a version can be read alone: the version that
    // last wrote each entry, and a tombstone for each entry removed.
    &[
        "ALTER TABLE policy_version ADD COLUMN removals_since BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_settings ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_locations ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_databases ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_tables ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_roles ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_users ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_groups ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE policy_grants ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
        "CREATE INDEX policy_tables_changed_at ON policy_tables (changed_at)",
        "CREATE INDEX policy_users_changed_at ON policy_users (changed_at)",
        "CREATE INDEX policy_grants_changed_at ON policy_grants (changed_at)",
        "CREATE TABLE policy_removed (kind TEXT NOT NULL, entry_key TEXT NOT NULL, \
         removed_at BIGINT NOT NULL, PRIMARY KEY (kind, entry_key))",
    ],
    // 3: tags: their definitions, and the masks and row filters attached
    // to tag expressions (tags on databases, tables and columns live in
    // those entries).
    &[
        "CREATE TABLE policy_tags (tag_key TEXT PRIMARY KEY, entry TEXT NOT NULL, \
         changed_at BIGINT NOT NULL DEFAULT 0)",
        "CREATE TABLE policy_tag_masks (name TEXT PRIMARY KEY, entry TEXT NOT NULL, \
         changed_at BIGINT NOT NULL DEFAULT 0)",
        "CREATE TABLE policy_tag_row_filters (name TEXT PRIMARY KEY, entry TEXT NOT NULL, \
         changed_at BIGINT NOT NULL DEFAULT 0)",
    ],
    // 4: failed sign-ins per user name and peer, counted by every server of
    // a fleet (`sign_ins.rs`).
    &[
        "CREATE TABLE sign_in_failures (user_name TEXT NOT NULL, peer TEXT NOT NULL, \
         failures BIGINT NOT NULL, since_ms BIGINT NOT NULL, PRIMARY KEY (user_name, peer))",
        "CREATE INDEX sign_in_failures_since ON sign_in_failures (since_ms)",
    ],
];

/// The schema version a store has once this build has opened it.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The PostgreSQL advisory lock that servers starting at once on one store
/// take around each migration step (any constant; this one spells "LKGT").
const MIGRATION_LOCK: i64 = 0x4C4B_4754;

/// Brings the store's schema to [`SCHEMA_VERSION`], applying the missing
/// migrations in order. A store written by a newer build is refused. On
/// PostgreSQL (`shared`), each step holds an advisory lock, so that servers
/// of a fleet starting at once migrate one after the other.
pub(crate) async fn migrate(pool: &sqlx::AnyPool, shared: bool) -> Result<i64, StoreError> {
    loop {
        // SQLite: the write lock from the start, so that servers opening a
        // new store at once wait for each other instead of failing to turn
        // a read into a write.
        let mut transaction = if shared {
            pool.begin().await?
        } else {
            pool.begin_with("BEGIN IMMEDIATE").await?
        };
        if shared {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *transaction)
                .await?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS store_schema (version BIGINT NOT NULL)")
            .execute(&mut *transaction)
            .await?;
        let current = current_version(&mut transaction).await?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        if current == SCHEMA_VERSION {
            return Ok(current);
        }
        for statement in MIGRATIONS[current as usize] {
            sqlx::query(statement).execute(&mut *transaction).await?;
        }
        sqlx::query("INSERT INTO store_schema (version) VALUES ($1)")
            .bind(current + 1)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    }
}

async fn current_version(transaction: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM store_schema")
        .fetch_one(&mut **transaction)
        .await?;
    Ok(version.unwrap_or(0))
}
