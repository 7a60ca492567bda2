//! [`Administration`]: a server's link to its policy store. It runs
//! administration statements (each one transaction that bumps the policy
//! version, then served at once by this server) and keeps the engine on the
//! store's current version (a version check before each call, and, for a
//! shared PostgreSQL store, the change announcements other servers make).
//!
//! ```text
//! statement ─▶ lock the store, read it ─▶ apply (changes.rs: rights checked)
//!          ─▶ the whole new catalog checked and planned (Engine::prepare)
//!          ─▶ commit (version + 1, NOTIFY) ─▶ Engine::install ─▶ answer
//! another server: NOTIFY or its next call's version check ─▶ load, prepare, install
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use futures::future::BoxFuture;
use lakegate_catalog::{Catalog, CatalogErrors, CatalogFile, KnownSchemas, LoadOptions};
use lakegate_engine::{Engine, PolicySnapshot};
use lakegate_policy::{EffectiveAccess, Grant, TableName};
use lakegate_store::PolicyStore;

use crate::changes::{Actor, Changed, apply};
use crate::created_tables::{CreatedTable, register};
use crate::error::AdminError;
use crate::show::{effective_access, show, visible_grants};
use crate::statement::AdminStatement;

/// What an administration statement answered.
#[derive(Debug, Clone)]
pub struct AdminAnswer {
    /// The result: one row for a change, the listing for `SHOW`.
    pub batch: RecordBatch,
    /// What a change did, in words (empty for `SHOW`).
    pub summary: String,
    /// The policy version the statement ran against.
    pub version_before: i64,
    /// The policy version after it (the same for `SHOW`).
    pub version_after: i64,
}

/// A server's administration of its policy store (see the module docs).
#[derive(Debug)]
pub struct Administration {
    store: PolicyStore,
    engine: Engine,
    load: LoadOptions,
    /// One reload at a time: calls arriving together wait for it instead of
    /// each loading the store.
    reloading: tokio::sync::Mutex<()>,
}

/// Wait before listening again after the store's connection failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

impl Administration {
    /// Administers `store` for `engine`, which serves what the store holds;
    /// catalogs are loaded with `load` (the data directory).
    pub fn new(store: PolicyStore, engine: Engine, load: LoadOptions) -> Arc<Self> {
        Arc::new(Self {
            store,
            engine,
            load,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The engine administered.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Brings the engine to the store's current policy version, if it is
    /// behind: the guard each call passes before it is served, so that a
    /// change another server committed is in force here for the next call.
    /// Only a shared store (PostgreSQL) can change behind this server's back.
    pub async fn ensure_current(&self) -> Result<(), AdminError> {
        if !self.store.is_shared() {
            return Ok(());
        }
        let version = self.store.version().await?;
        self.reload(version).await
    }

    /// Loads the store and serves it, unless the engine serves `version`
    /// or a later one already (another call may have loaded it while this
    /// one waited its turn).
    async fn reload(&self, version: i64) -> Result<(), AdminError> {
        if version <= self.engine.policy_version() {
            return Ok(());
        }
        let _one_at_a_time = self.reloading.lock().await;
        if version <= self.engine.policy_version() {
            return Ok(());
        }
        let stored = self.store.load().await?;
        if stored.version <= self.engine.policy_version() {
            return Ok(());
        }
        let snapshot = self.prepare(stored.content, stored.version).await?;
        self.engine.install(snapshot);
        log::info!("serving policy version {}", stored.version);
        Ok(())
    }

    /// Listens to a shared store's change announcements and reloads on each,
    /// for as long as the server runs (reconnecting when the connection
    /// drops). Nothing to do for SQLite.
    pub fn watch(self: &Arc<Self>) {
        if !self.store.is_shared() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match this.store.listen().await {
                    Ok(Some(mut listener)) => loop {
                        match listener.recv().await {
                            Ok(announced) => {
                                // The payload is the new version; a server
                                // serves its own changes already.
                                let version = announced.payload().parse().unwrap_or(i64::MAX);
                                if let Err(e) = this.reload(version).await {
                                    log::error!("cannot serve the new policy version: {e}");
                                }
                            }
                            Err(e) => {
                                log::warn!("policy store announcements interrupted: {e}");
                                break;
                            }
                        }
                    },
                    Ok(None) => return,
                    Err(e) => log::warn!("cannot listen to the policy store: {e}"),
                }
                tokio::time::sleep(LISTEN_RETRY).await;
                // Changes made while not listening.
                if let Err(e) = this.ensure_current().await {
                    log::warn!("{e}");
                }
            }
        });
    }

    /// Runs `statement` as `actor`: a `SHOW` against the policy served now;
    /// a change in one transaction of the store, served by this engine once
    /// committed. Refused changes leave the store as it was.
    pub async fn execute(
        &self,
        actor: &Actor,
        statement: &AdminStatement,
    ) -> Result<AdminAnswer, AdminError> {
        if statement.is_show() {
            self.ensure_current().await?;
            let served = self.engine.snapshot();
            let batch = show(statement, actor, &served)?;
            return Ok(AdminAnswer {
                batch,
                summary: String::new(),
                version_before: served.version(),
                version_after: served.version(),
            });
        }
        self.change(|served, content| apply(statement, actor, served, content))
            .await
    }

    /// Declares `created`, a table `actor`'s role has just written (`CREATE
    /// TABLE AS`, ingestion in mode create), owned by that role: one
    /// transaction of the store, like a statement (see `created_tables.rs`).
    pub async fn register_created_table(
        &self,
        actor: &Actor,
        created: &CreatedTable,
    ) -> Result<AdminAnswer, AdminError> {
        self.change(|served, content| register(created, actor, served, content))
            .await
    }

    /// Makes the change `make` computes from the policy served and the
    /// store's content, in one transaction of the store, and serves it.
    /// Refused changes leave the store as it was.
    async fn change(
        &self,
        make: impl FnOnce(&Catalog, &CatalogFile) -> Result<Changed, AdminError>,
    ) -> Result<AdminAnswer, AdminError> {
        let change = self.store.begin_change().await?;
        let before = change.current().version;
        // With the store locked, the engine serves exactly what it holds.
        if self.engine.policy_version() < before {
            let snapshot = self
                .prepare(change.current().content.clone(), before)
                .await?;
            self.engine.install(snapshot);
        }
        let served = self.engine.snapshot();
        let changed = make(served.catalog(), &change.current().content)?;
        let content = Arc::new(changed.content);
        let snapshot = self.prepare(Arc::clone(&content), before + 1).await?;
        // Held from commit to install: this server's own announcement,
        // arriving meanwhile, then finds the version served and loads nothing.
        let reloading = self.reloading.lock().await;
        let applied = change.commit(content).await?;
        if applied.version == snapshot.version() {
            self.engine.install(snapshot);
            drop(reloading);
        } else {
            drop(reloading);
            self.reload(applied.version).await?;
        }
        Ok(AdminAnswer {
            batch: change_result(&changed.summary, applied.version),
            summary: changed.summary,
            version_before: before,
            version_after: applied.version,
        })
    }

    /// The grants `SHOW GRANTS [TO ROLE role] [ON TABLE table]` lists for
    /// `actor`, and the policy version they are of.
    pub async fn grants(
        &self,
        actor: &Actor,
        role: Option<&str>,
        table: Option<&TableName>,
    ) -> Result<(Vec<Grant>, i64), AdminError> {
        self.ensure_current().await?;
        let served = self.engine.snapshot();
        Ok((
            visible_grants(actor, &served, role, table)?,
            served.version(),
        ))
    }

    /// What `role` sees of `table` (`SHOW EFFECTIVE ACCESS`), for `actor`,
    /// and the policy version it is of: empty when the role has no access.
    pub async fn effective_access(
        &self,
        actor: &Actor,
        role: &str,
        table: &TableName,
    ) -> Result<(Vec<EffectiveAccess>, i64), AdminError> {
        self.ensure_current().await?;
        let served = self.engine.snapshot();
        Ok((
            effective_access(actor, &served, role, table)?,
            served.version(),
        ))
    }

    /// The store, when a fleet of servers shares it (PostgreSQL).
    pub fn shared_store(&self) -> Option<&PolicyStore> {
        self.store.is_shared().then_some(&self.store)
    }

    /// The store's kind, as shown: `sqlite` or `postgres`.
    pub fn store_kind(&self) -> &'static str {
        if self.store.is_shared() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// `content` checked as a whole catalog and planned, ready to serve as
    /// `version`. Tables already served keep their schemas (no file is read
    /// again for a grant).
    async fn prepare(
        &self,
        content: Arc<CatalogFile>,
        version: i64,
    ) -> Result<PolicySnapshot, AdminError> {
        let load = LoadOptions {
            known_schemas: KnownSchemas::of(self.engine.snapshot().catalog()),
            ..self.load.clone()
        };
        let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let label = PathBuf::from(self.store.url());
        // Boxed: the loader's future is not provably `Send` for every
        // lifetime otherwise (rust-lang/rust#102211), and the store's
        // listener runs this on a spawned task.
        let catalog: BoxFuture<'_, _> = Box::pin(Catalog::from_shared_files(
            vec![(label, content)],
            &base,
            &load,
        ));
        let catalog = catalog.await.map_err(refused)?;
        self.engine.prepare(catalog, version).await.map_err(refused)
    }
}

/// A change that would leave the catalog invalid: every problem, by entry.
fn refused(errors: CatalogErrors) -> AdminError {
    let problems: Vec<String> = errors
        .0
        .iter()
        .map(|e| {
            if e.entry.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.entry, e.message)
            }
        })
        .collect();
    AdminError::invalid(format!(
        "the change would leave the catalog invalid: {}",
        problems.join("; ")
    ))
}

/// The one-row answer of a change: what it did and the policy version.
fn change_result(summary: &str, version: i64) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("result", DataType::Utf8, false),
        Field::new("policy_version", DataType::Int64, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec![summary])),
            Arc::new(Int64Array::from(vec![version])),
        ],
    )
    .expect("the columns match the schema")
}

/// The schema of a change's answer (for a FlightInfo planned before it runs).
pub fn change_result_schema() -> Arc<Schema> {
    change_result("", 0).schema()
}
