//! The raw catalog of the policy context: each database's tables as stored,
//! before any policy. A Delta table is also found by a versioned name
//! (`orders@v3`, `orders@2026-12-04T10:00:00Z`): that version of it, read
//! under the same policy as the table, because the policy plan of a
//! versioned read names the versioned table here.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result, not_impl_err};
use lakegate_delta::{DeltaProvider, TableVersion};

/// One database's raw tables.
#[derive(Debug, Default)]
pub(crate) struct RawDatabase {
    tables: BTreeMap<String, Arc<dyn TableProvider>>,
}

impl RawDatabase {
    /// Adds `table` as `name`.
    pub(crate) fn insert(&mut self, name: String, table: Arc<dyn TableProvider>) {
        self.tables.insert(name, table);
    }
}

/// `raw` at `version`: the latest is `raw` itself; another version exists
/// only of a Delta table, and is found (or refused) here, while the query is
/// planned. `table` names it in errors.
pub(crate) async fn raw_version(
    table: &str,
    raw: &Arc<dyn TableProvider>,
    version: TableVersion,
) -> Result<Arc<dyn TableProvider>> {
    if version == TableVersion::Latest {
        return Ok(Arc::clone(raw));
    }
    match raw.downcast_ref::<DeltaProvider>() {
        Some(delta) => match delta.at(version).await {
            Ok(pinned) => Ok(Arc::new(pinned)),
            Err(e) => Err(DataFusionError::Plan(format!(
                "cannot read {version} of table '{table}': {e}"
            ))),
        },
        None => Err(DataFusionError::Plan(format!(
            "table '{table}' is not a Delta table: only Delta tables are read at a version \
             ({version} was asked for)"
        ))),
    }
}

#[async_trait]
impl SchemaProvider for RawDatabase {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.tables.get(name) {
            return Ok(Some(Arc::clone(table)));
        }
        let Ok((base, version)) = TableVersion::split(name) else {
            return Ok(None);
        };
        match self.tables.get(base) {
            Some(raw) => raw_version(base, raw, version).await.map(Some),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        match TableVersion::split(name) {
            Ok((base, _)) => self.tables.contains_key(base),
            Err(_) => false,
        }
    }

    fn register_table(
        &self,
        _name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        not_impl_err!("the raw catalog is fixed when a policy version is built")
    }
}
