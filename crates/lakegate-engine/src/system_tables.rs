//! Lakegate's own tables, for lake administrators only: `system.audit`, the
//! audit log as a table (every event in the audit directory, oldest first,
//! read when a query scans it).
//!
//! The `system` database exists in a session only when the engine has an
//! audit directory and the session's role administers the whole lake; for
//! everyone else it does not exist, with the same answer as any table the
//! role may not describe.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, Result, not_impl_err};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use lakegate_audit::{audit_schema, read_events};

/// The database of Lakegate's own tables.
pub(crate) const SYSTEM_DATABASE: &str = "system";
/// The audit log's table in [`SYSTEM_DATABASE`].
pub(crate) const AUDIT_TABLE: &str = "audit";

/// `system.audit`: the audit log in `dir`.
#[derive(Debug)]
pub(crate) struct AuditTable {
    dir: PathBuf,
}

impl AuditTable {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait]
impl TableProvider for AuditTable {
    fn schema(&self) -> SchemaRef {
        audit_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let dir = self.dir.clone();
        let batches = tokio::task::spawn_blocking(move || read_events(&dir))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            self.schema(),
            projection.cloned(),
        )?)
    }
}

/// The `system` database of an administrator's session.
#[derive(Debug)]
pub(crate) struct SystemDatabase {
    audit: Arc<AuditTable>,
}

impl SystemDatabase {
    pub(crate) fn new(audit_dir: PathBuf) -> Self {
        Self {
            audit: Arc::new(AuditTable::new(audit_dir)),
        }
    }
}

#[async_trait]
impl SchemaProvider for SystemDatabase {
    fn table_names(&self) -> Vec<String> {
        vec![AUDIT_TABLE.to_string()]
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok((name == AUDIT_TABLE).then(|| Arc::clone(&self.audit) as Arc<dyn TableProvider>))
    }

    fn register_table(
        &self,
        _name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        not_impl_err!("creating tables is not allowed")
    }

    fn table_exist(&self, name: &str) -> bool {
        name == AUDIT_TABLE
    }
}
