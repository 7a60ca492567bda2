//! Building a policy version's [`Lake`]: the runtime with this version's
//! own object stores, the session templates, a provider per table (kept
//! from the version served when the table reads the same files), and the
//! policies checked (those the served version checked alike are skipped).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::CatalogProvider;
use datafusion::catalog::{MemoryCatalogProvider, MemoryCatalogProviderList, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::object_store::DefaultObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{FunctionRegistry, SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use lakegate_catalog::{Catalog, CatalogError, CatalogErrors, TableFormat};
use lakegate_delta::DeltaProvider;

use crate::distribution::with_workers;
use crate::engine::{EngineOptions, Shared, engine_error};
use crate::error::Result;
use crate::executor::executor;
use crate::lake::{Lake, LakeParts, StatementPlans};
use crate::optimizer_rules::{optimizer_rules, physical_optimizer_rules};
use crate::planner::NO_DATABASE;
use crate::raw_tables::RawDatabase;
use crate::secured_table::ScanPlanner;
use crate::table_cache::{CachedTable, TableCache};
use crate::validate::validate_policies;
use crate::wire::reading_schema;

/// Tables opened at once when an engine starts.
const TABLES_OPENED_AT_ONCE: usize = 16;

/// How many query plans the engine keeps before starting over.
const STATEMENT_PLAN_CACHE_LIMIT: usize = 1_000;

/// [`build_lake`] on the query executor: opening tables reads footers and
/// checking policies plans them, like every other planning.
pub(crate) async fn build_lake_on_executor(
    shared: Arc<Shared>,
    catalog: Catalog,
    version: i64,
    checked: Option<Arc<Lake>>,
) -> Result<Arc<Lake>, CatalogErrors> {
    let built = executor()
        .run(async move { Ok(build_lake(&shared, catalog, version, checked.as_deref()).await) })
        .await;
    built.unwrap_or_else(|e| Err(engine_error(e.to_string())))
}

/// The lake serving `catalog` as policy version `version`, its policies
/// checked (those `checked`, a lake served already, holds alike are not
/// checked again).
async fn build_lake(
    shared: &Shared,
    catalog: Catalog,
    version: i64,
    checked: Option<&Lake>,
) -> Result<Arc<Lake>, CatalogErrors> {
    let options = &shared.options;
    // The engine's caches, and this version's own object stores: a version
    // that is refused must not change where the served one reads.
    let runtime = RuntimeEnvBuilder::from_runtime_env(&shared.runtime)
        .with_object_store_registry(Arc::new(DefaultObjectStoreRegistry::new()))
        .build_arc()
        .map_err(|e| engine_error(format!("cannot set up the runtime: {e}")))?;
    for location in catalog.storage.values() {
        runtime.register_object_store(&location.registry_url(), Arc::clone(&location.store));
    }
    let config = session_config(&catalog, options);
    let user_template = SessionStateBuilder::new()
        .with_config(config.clone())
        .with_runtime_env(Arc::clone(&runtime))
        .with_default_features()
        .with_optimizer_rules(optimizer_rules(options.reorder_joins))
        .build();
    // The policy context is made from the user template below, before
    // the embedding application's functions join it: policies never see
    // them.
    let policy_base = user_template.clone();
    let user_template = SessionStateBuilder::new_from_existing(user_template)
        .with_physical_optimizer_rules(physical_optimizer_rules())
        .build();
    // Only users' queries are distributed: a policy plan is planned on its
    // own (and under its barrier) before the user's plan is distributed.
    let mut user_template = match &options.workers {
        Some(workers) => with_workers(user_template, workers),
        None => user_template,
    };
    for function in &options.functions {
        user_template
            .register_udf(Arc::clone(function))
            .expect("registering a function cannot fail");
    }

    let mut errors = Vec::new();
    let mut raw_tables = BTreeMap::new();
    let mut raw_databases: BTreeMap<&str, RawDatabase> = catalog
        .databases
        .keys()
        .map(|database| (database.as_str(), RawDatabase::default()))
        .collect();
    // Boxed: the compiler cannot otherwise prove this future `Send` for
    // every lifetime of the borrowed tables (rust-lang/rust#102211), and
    // it must be, to run on the query executor.
    let opening: Vec<BoxFuture<'_, _>> = catalog
        .tables
        .values()
        .map(
            |table| match checked.and_then(|served| served_raw_table(served, table)) {
                Some(provider) => futures::future::ready(Ok(provider)).boxed(),
                None => {
                    raw_table(&user_template, &catalog, table, shared.table_cache.clone()).boxed()
                }
            },
        )
        .collect();
    let opened = futures::stream::iter(opening)
        .buffered(TABLES_OPENED_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    for (table, opened) in catalog.tables.values().zip(opened) {
        match opened {
            Ok(provider) => {
                raw_databases
                    .get_mut(table.name.database.as_str())
                    .expect("every table's database is in the catalog")
                    .insert(table.name.table.clone(), Arc::clone(&provider));
                raw_tables.insert(table.name.clone(), provider);
            }
            Err(e) => errors.push(CatalogError {
                file: Default::default(),
                entry: format!("table '{}'", table.name),
                message: format!("cannot open: {e}"),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(CatalogErrors(errors));
    }
    let raw_catalog = MemoryCatalogProvider::new();
    for (database, tables) in raw_databases {
        raw_catalog
            .register_schema(database, Arc::new(tables))
            .expect("a memory catalog accepts schemas");
    }
    // Its own catalog list: the template's must stay empty.
    let mut policy_template = SessionStateBuilder::new_from_existing(policy_base)
        .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
        .build();
    policy_template
        .config_mut()
        .options_mut()
        .catalog
        .information_schema = false;
    let catalogs = policy_template.catalog_list();
    catalogs.register_catalog(catalog.name.clone(), Arc::new(raw_catalog));
    let scan_planner = ScanPlanner {
        state: SessionStateBuilder::new_from_existing(policy_template.clone())
            .with_physical_optimizer_rules(Vec::new())
            .build(),
        reuse_for: if options.reuse_scan_plans {
            options.file_listing_ttl
        } else {
            Duration::ZERO
        },
        table_writes: Arc::clone(&shared.table_writes),
        dynamic_filter_min_rows: options.dynamic_filter_min_rows,
    };

    let lake = Arc::new(Lake::new(LakeParts {
        catalog,
        version,
        raw_tables,
        user_template,
        policy_template,
        scan_planner,
        statement_plans: options
            .reuse_statement_plans
            .then(|| StatementPlans::new(STATEMENT_PLAN_CACHE_LIMIT)),
        audit_dir: options.audit_dir.clone(),
        query_memory: options.query_memory,
        view_types: options.view_types,
        reorder_joins: options.reorder_joins,
        max_write_bytes: options.max_write_bytes,
    }));
    let errors = validate_policies(&lake, checked).await;
    if !errors.is_empty() {
        return Err(CatalogErrors(errors));
    }
    Ok(lake)
}

fn session_config(catalog: &Catalog, options: &EngineOptions) -> SessionConfig {
    let mut config = options
        .session_config()
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema(
            catalog.name.clone(),
            catalog
                .default_database
                .clone()
                .unwrap_or_else(|| NO_DATABASE.to_string()),
        );
    // Planning errors point at the offending part of the SQL text.
    config.options_mut().sql_parser.collect_spans = true;
    config
}

/// The provider `served` (the version served now) has for `table`, when it
/// reads the same files the same way: a policy change among a thousand
/// tables opens none of them again. A provider holds no object store (each
/// version resolves those through its own registry at scan time), so it
/// serves any version whose table matches.
fn served_raw_table(
    served: &Lake,
    table: &lakegate_catalog::Table,
) -> Option<Arc<dyn TableProvider>> {
    let before = served.catalog().tables.get(&table.name)?;
    let same = before.url == table.url
        && before.format == table.format
        && before.storage == table.storage
        && before.partition_columns == table.partition_columns
        && (Arc::ptr_eq(&before.schema, &table.schema) || before.schema == table.schema);
    same.then(|| served.raw_table(&table.name).cloned())
        .flatten()
}

/// The raw table behind a catalog table: Parquet files read through the
/// table cache if there is one, or a Delta table.
async fn raw_table(
    state: &SessionState,
    catalog: &Catalog,
    table: &lakegate_catalog::Table,
    cache: Option<Arc<TableCache>>,
) -> datafusion::common::Result<Arc<dyn TableProvider>> {
    let schema = reading_schema(&table.stored_schema());
    if table.format == TableFormat::Delta {
        let location = catalog.storage.get(&table.storage).ok_or_else(|| {
            DataFusionError::Plan(format!("unknown storage location '{}'", table.storage))
        })?;
        let delta = location
            .delta_table(&table.url)
            .map_err(DataFusionError::Plan)?;
        return Ok(Arc::new(DeltaProvider::new(delta, schema)));
    }
    let url = ListingTableUrl::parse(table.url.as_str())?;
    // The session's Parquet settings apply to every table.
    let parquet = state.table_options().parquet.clone();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default().with_options(parquet)))
        .with_file_extension(".parquet")
        .with_table_partition_cols(table.partition_columns.clone());
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    // Per-file statistics (from the cached footers) are kept in the
    // runtime's statistics cache, validated by each file's size and
    // modification time: without it every scan planned converts every
    // file's footer statistics again (a tenth of a `LIMIT 10` query's CPU).
    let statistics = state.runtime_env().cache_manager.get_file_statistic_cache();
    let files = Arc::new(ListingTable::try_new(config)?.with_cache(statistics));
    Ok(match cache {
        Some(cache) => Arc::new(CachedTable::new(table.name.clone(), files, cache)),
        None => files,
    })
}
