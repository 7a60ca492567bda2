//! The catalog a role's session sees: only databases and tables the role may
//! describe, each table resolved to a [`SecuredTable`]. DataFusion's
//! `information_schema` and SHOW commands read through these providers, so they
//! list exactly what the role may describe. Nothing can be registered.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result, not_impl_err};
use datafusion::execution::SessionState;
use lakegate_delta::TableVersion;
use lakegate_policy::{RuntimeRole, TableName};

use crate::error::policy_error;
use crate::lake::Lake;
use crate::raw_tables::raw_version;
use crate::secured_table::{SecuredTable, plan_policy};
use crate::system_tables::{AUDIT_TABLE, SYSTEM_DATABASE, SystemDatabase};
use crate::table_cache::statistics_source;

/// Resolves tables to their secured form for one session (secured tables are
/// cached engine-wide, by user, role and table).
#[derive(Debug)]
pub(crate) struct SecuredResolver {
    lake: Arc<Lake>,
    runtime: RuntimeRole,
    /// The policy context: raw tables, and the session functions bound to this
    /// session's user and role. Made on the first table missing from the
    /// engine's cache, so a session whose tables are all cached never pays
    /// for it.
    policy_state: OnceLock<SessionState>,
}

impl SecuredResolver {
    pub(crate) fn new(lake: Arc<Lake>, runtime: RuntimeRole) -> Self {
        Self {
            lake,
            runtime,
            policy_state: OnceLock::new(),
        }
    }

    fn policy_state(&self) -> &SessionState {
        self.policy_state.get_or_init(|| {
            self.lake
                .policy_state(&self.runtime.user, &self.runtime.role)
        })
    }

    pub(crate) fn runtime(&self) -> &RuntimeRole {
        &self.runtime
    }

    /// The table as the session's role sees it, or `None` when the role may
    /// not describe it (or it does not exist).
    pub(crate) async fn secured_table(
        &self,
        name: &TableName,
    ) -> Result<Option<Arc<SecuredTable>>> {
        let key = (
            self.runtime.user.clone(),
            self.runtime.role.clone(),
            name.clone(),
        );
        if let Some(table) = self.lake.secured_tables().get(&key) {
            return Ok(Some(table));
        }
        // A versioned name (orders@v3) is read under the policy of its
        // table, the version in place of the latest.
        let (base, version) = match TableVersion::split(&name.table) {
            Ok((base, version)) => (TableName::new(&name.database, base), version),
            // Said only to a role that sees the table the name starts with.
            Err(e) if self.may_describe(name) => {
                return Err(DataFusionError::Plan(e.to_string()));
            }
            Err(_) => return Ok(None),
        };
        let Some(raw) = self.lake.raw_table(&base) else {
            return Ok(None);
        };
        let Some(mut access) = self.lake.access_of(&self.runtime.role, &base) else {
            return Ok(None);
        };
        let raw = &raw_version(&base.to_string(), raw, version).await?;
        access.table = name.clone();
        let columns = self.lake.policy_columns(&base).unwrap_or_default();
        let table = if access.is_unrestricted(columns) {
            SecuredTable::unrestricted(access, Arc::clone(raw))
        } else {
            let plan = plan_policy(self.policy_state(), &access, &raw.schema())
                .await
                .map_err(|e| policy_error(name, &e))?;
            SecuredTable::restricted(
                access,
                &raw.schema(),
                plan,
                Arc::clone(self.lake.scan_planner()),
            )
        };
        let table = if self.lake.reorder_joins() {
            table.with_statistics_source(statistics_source(raw))
        } else {
            table
        };
        let table = Arc::new(table);
        self.lake.secured_tables().insert(key, Arc::clone(&table));
        Ok(Some(table))
    }

    /// Databases the role may see: those holding a table it may describe
    /// (and `system`, for lake administrators when there is an audit log).
    pub(crate) fn visible_databases(&self) -> Vec<String> {
        // `system` is a reserved name, never one of the catalog's databases.
        let catalog = self.lake.catalog().databases.keys().map(String::as_str);
        catalog
            .chain([SYSTEM_DATABASE])
            .filter(|db| self.may_see_database(db))
            .map(str::to_string)
            .collect()
    }

    /// Whether the role may see `database` (one visibility decision for
    /// SQL resolution, USE and listings; cheaper than listing them all).
    pub(crate) fn may_see_database(&self, database: &str) -> bool {
        if database == SYSTEM_DATABASE {
            return self.system_database().is_some();
        }
        self.visible_tables(database).next().is_some()
    }

    /// The `system` database, when the session's role administers the lake
    /// and the engine keeps an audit log.
    pub(crate) fn system_database(&self) -> Option<SystemDatabase> {
        let dir = self.lake.audit_dir()?;
        let admin = self.lake.catalog().policy.is_lake_admin(&self.runtime.role);
        admin.then(|| SystemDatabase::new(dir.to_path_buf()))
    }

    /// The one visibility decision every path uses (SQL, SHOW, metadata,
    /// Flight): the table exists and the session's role may describe it.
    /// A versioned name (`orders@v3`, or a malformed one, whose error only
    /// a role that sees the table is told) is decided as its table.
    pub(crate) fn may_describe(&self, table: &TableName) -> bool {
        if table.database == SYSTEM_DATABASE {
            return table.table == AUDIT_TABLE && self.system_database().is_some();
        }
        let base = match table.table.rsplit_once('@') {
            Some((base, _)) => TableName::new(&table.database, base),
            None => table.clone(),
        };
        self.lake.may_describe(&self.runtime.role, &base)
    }

    pub(crate) fn visible_tables<'a>(
        &'a self,
        database: &'a str,
    ) -> impl Iterator<Item = &'a TableName> + 'a {
        self.lake
            .table_names()
            .filter(move |t| t.database == database && self.may_describe(t))
    }
}

/// The list of catalogs: just the Lakegate catalog.
#[derive(Debug)]
pub(crate) struct SecuredCatalogList {
    name: String,
    catalog: Arc<SecuredCatalog>,
}

impl SecuredCatalogList {
    pub(crate) fn new(resolver: Arc<SecuredResolver>) -> Self {
        Self {
            name: resolver.lake.catalog().name.clone(),
            catalog: Arc::new(SecuredCatalog { resolver }),
        }
    }
}

impl CatalogProviderList for SecuredCatalogList {
    fn register_catalog(
        &self,
        _name: String,
        _catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        // Refused statements never get here; ignore attempts defensively.
        None
    }

    fn catalog_names(&self) -> Vec<String> {
        vec![self.name.clone()]
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        (name == self.name).then(|| Arc::clone(&self.catalog) as Arc<dyn CatalogProvider>)
    }
}

/// The Lakegate catalog as one role sees it.
#[derive(Debug)]
pub(crate) struct SecuredCatalog {
    resolver: Arc<SecuredResolver>,
}

impl CatalogProvider for SecuredCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.resolver.visible_databases()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == SYSTEM_DATABASE {
            return self
                .resolver
                .system_database()
                .map(|db| Arc::new(db) as Arc<dyn SchemaProvider>);
        }
        self.resolver.may_see_database(name).then(|| {
            Arc::new(SecuredDatabase {
                database: name.to_string(),
                resolver: Arc::clone(&self.resolver),
            }) as Arc<dyn SchemaProvider>
        })
    }

    fn register_schema(
        &self,
        _name: &str,
        _schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        not_impl_err!("creating databases is not allowed")
    }
}

/// One database as one role sees it.
#[derive(Debug)]
pub(crate) struct SecuredDatabase {
    database: String,
    resolver: Arc<SecuredResolver>,
}

#[async_trait]
impl SchemaProvider for SecuredDatabase {
    fn table_names(&self) -> Vec<String> {
        self.resolver
            .visible_tables(&self.database)
            .map(|t| t.table.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let name = TableName::new(&self.database, name);
        Ok(self
            .resolver
            .secured_table(&name)
            .await?
            .map(|t| t as Arc<dyn TableProvider>))
    }

    fn register_table(
        &self,
        _name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        not_impl_err!("creating tables is not allowed")
    }

    fn table_exist(&self, name: &str) -> bool {
        self.resolver
            .may_describe(&TableName::new(&self.database, name))
    }
}
