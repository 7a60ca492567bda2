//! Reading a Delta table in DataFusion: each scan takes the snapshot of the
//! version asked for (the latest is read again at every scan, so readers
//! see a commit as soon as it lands and never part of one) and reads it
//! through the library's own scan, presenting the columns the catalog
//! knows the table by.

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use chrono::Utc;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal, cast};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use deltalake_core::delta_datafusion::TableProviderBuilder;
use deltalake_core::kernel::Snapshot;

use crate::location::{DeltaError, DeltaLocation};
use crate::version::TableVersion;

/// A Delta table as DataFusion reads it: the latest version (read again at
/// every scan), or one version pinned when the provider is made.
#[derive(Debug, Clone)]
pub struct DeltaProvider {
    location: DeltaLocation,
    schema: SchemaRef,
    pinned: Option<Arc<Snapshot>>,
}

impl DeltaProvider {
    /// The table at `location`, read as `schema` (its columns by name, cast
    /// to these types; a column a version lacks reads as NULL).
    pub fn new(location: DeltaLocation, schema: SchemaRef) -> Self {
        Self {
            location,
            schema,
            pinned: None,
        }
    }

    /// The same table at `version`, its snapshot read now: an error when
    /// the version does not exist, or names a time still to come.
    pub async fn at(&self, version: TableVersion) -> Result<Self, DeltaError> {
        if let TableVersion::AsOf(time) = version
            && time > Utc::now()
        {
            return Err(DeltaError::Generic(format!(
                "{} is in the future",
                time.to_rfc3339()
            )));
        }
        let Some(number) = self.location.resolve(&version).await? else {
            return Ok(Self {
                pinned: None,
                ..self.clone()
            });
        };
        let snapshot = self.location.snapshot(Some(number)).await?;
        Ok(Self {
            pinned: Some(Arc::new(snapshot)),
            ..self.clone()
        })
    }
}

#[async_trait]
impl TableProvider for DeltaProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune files and row groups; DataFusion applies them again
        // above the scan, so no row depends on the library's evaluation.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = match &self.pinned {
            Some(snapshot) => Arc::clone(snapshot),
            // The cause stays in the chain: a storage failure is known as one.
            None => Arc::new(self.location.snapshot(None).await.map_err(|e| {
                DataFusionError::Context(
                    format!("cannot read the Delta table at {}", self.location.url()),
                    Box::new(DataFusionError::External(Box::new(e))),
                )
            })?),
        };
        let scan = TableProviderBuilder::default()
            .with_log_store(Arc::clone(self.location.log_store()))
            .with_snapshot(snapshot)
            .build()
            .await?;
        let stored = scan.schema();
        let wanted: Vec<usize> = match projection {
            Some(columns) => columns.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        // The stored columns to read, by name, and where each wanted
        // column comes from (None: this version does not have it).
        let mut read = Vec::new();
        let mut sources = Vec::new();
        for &i in &wanted {
            let name = self.schema.field(i).name();
            sources.push(stored.index_of(name).ok().map(|at| {
                read.push(at);
                read.len() - 1
            }));
        }
        // Filters only prune (DataFusion filters again above): one naming a
        // column this version lacks is left out.
        let filters: Vec<Expr> = filters
            .iter()
            .filter(|f| {
                f.column_refs()
                    .iter()
                    .all(|c| stored.index_of(&c.name).is_ok())
            })
            .cloned()
            .collect();
        let plan = scan.scan(state, Some(&read), &filters, limit).await?;
        let target = self.schema.project(&wanted)?;
        conform(plan, &target, &sources)
    }
}

/// `plan`'s output as `target`: the column `sources[i]` of the plan (cast
/// where the types differ) or a NULL of the target's type.
fn conform(
    plan: Arc<dyn ExecutionPlan>,
    target: &Schema,
    sources: &[Option<usize>],
) -> Result<Arc<dyn ExecutionPlan>> {
    let input = plan.schema();
    let same = sources.iter().enumerate().all(|(i, source)| {
        *source == Some(i) && input.field(i).data_type() == target.field(i).data_type()
    }) && input.fields().len() == target.fields().len();
    if same {
        return Ok(plan);
    }
    let mut expressions: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::new();
    for (field, source) in target.fields().iter().zip(sources) {
        let expression: Arc<dyn PhysicalExpr> = match source {
            Some(at) => {
                let column = Arc::new(Column::new(input.field(*at).name(), *at));
                if input.field(*at).data_type() == field.data_type() {
                    column
                } else {
                    cast(column, &input, field.data_type().clone())?
                }
            }
            None => Arc::new(Literal::new(ScalarValue::try_from(field.data_type())?)),
        };
        expressions.push((expression, field.name().clone()));
    }
    Ok(Arc::new(ProjectionExec::try_new(expressions, plan)?))
}
