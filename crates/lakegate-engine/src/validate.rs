//! Checks of a catalog's policies that need the query planner: row filters
//! parse and are boolean over the table's columns, masks fit their column's
//! type, and every role's policy plan of every table it is granted plans.
//! Run when an engine is built; any failure keeps the catalog from serving.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::execution::SessionState;
use lakegate_catalog::CatalogError;
use lakegate_policy::{MaskKind, Resource, TableName};

use crate::lake::Lake;
use crate::masks::{check_builtin_fits, is_text};
use crate::secured_table::plan_policy;
use crate::sql_text::{
    accept_session_function_parens, check_single_expression, quote_ident,
    tables_named_in_expression,
};
use crate::table_cache::CheckOnly;
use lakegate_catalog::{NestedKind, PolicyTree};

/// The user name policies are planned for while checking a catalog.
const CHECK_USER: &str = "lakegate-check";

/// Whether `filter`, a row filter on `table`, reads a declared table whose
/// files could not be read: its failure to plan would repeat that error.
fn names_unreadable_table(
    filter: &str,
    table: &TableName,
    unreadable: &BTreeSet<TableName>,
) -> bool {
    !unreadable.is_empty()
        && tables_named_in_expression(filter).iter().any(|parts| {
            let named = match parts.as_slice() {
                [name] => TableName::new(&table.database, name),
                [.., database, name] => TableName::new(database, name),
                [] => return false,
            };
            unreadable.contains(&named)
        })
}

/// Whether `checked` (a lake served already) has `name` with the schema
/// `lake` has: what was checked on it then still holds.
fn same_table(lake: &Lake, checked: Option<&Lake>, name: &TableName) -> bool {
    match (
        lake.raw_table(name),
        checked.and_then(|c| c.raw_table(name)),
    ) {
        // The same provider (reused by the new version) first: comparing
        // a thousand schemas field by field is most of a small change's cost.
        (Some(now), Some(then)) => Arc::ptr_eq(now, then) || now.schema() == then.schema(),
        _ => false,
    }
}

/// Every problem found, with the file of the grant concerned. What
/// `checked`, a lake served already, holds alike (the same grant, the same
/// combined policy of a role on a table of the same schema) was checked
/// when it was built and is not planned again.
pub(crate) async fn validate_policies(lake: &Lake, checked: Option<&Lake>) -> Vec<CatalogError> {
    // A row filter may read other tables: when any table checked then is
    // gone or changed, everything is checked again.
    let checked = checked.filter(|c| c.table_names().all(|name| same_table(lake, Some(c), name)));
    let catalog = lake.catalog();
    // Roles holding exactly the grants they held then, on the same tables:
    // nothing of theirs needs planning again (one comparison per role, so
    // that a change among 10,000 grants costs no pass over all of them).
    let unchanged_roles: BTreeSet<&str> = match checked {
        Some(checked) => catalog
            .policy
            .roles()
            .map(|role| role.name.as_str())
            .filter(|role| {
                checked.catalog().policy.grants_of(role) == catalog.policy.grants_of(role)
                    && !catalog.policy.has_tag_policies(role)
            })
            .collect(),
        None => BTreeSet::new(),
    };
    let mut errors = Vec::new();
    let mut checked_pairs = BTreeSet::new();
    let mut unplannable = BTreeSet::new();
    for grant in catalog.policy.grants() {
        if unchanged_roles.contains(grant.role.as_str()) {
            continue;
        }
        let Resource::Table(name) = &grant.resource else {
            continue;
        };
        let Some(raw) = lake.raw_table(name) else {
            continue;
        };
        let checked_before = checked
            .is_some_and(|c| c.catalog().policy.grants_of(&grant.role).contains(grant))
            && same_table(lake, checked, name);
        if checked_before {
            checked_pairs.insert((grant.role.clone(), name.clone()));
            continue;
        }
        let schema = raw.schema();
        let state = policy_state(lake, &grant.role, name);
        let mut error = |message: String| {
            errors.push(CatalogError {
                file: catalog.grant_file(&grant.name),
                entry: format!("grant '{}'", grant.name),
                message,
            })
        };
        let reads_unreadable = grant
            .row_filter
            .as_ref()
            .is_some_and(|filter| names_unreadable_table(filter, name, &catalog.unreadable));
        if reads_unreadable {
            // Neither this filter nor the role's combined policy on the table
            // can plan; the unreadable table was reported by the loader.
            unplannable.insert((grant.role.clone(), name.clone()));
        } else if let Some(filter) = &grant.row_filter {
            match expression_type(&state, name, filter).await {
                Ok(DataType::Boolean) => {}
                Ok(other) => error(format!(
                    "row_filter is not a boolean expression (it is {other})"
                )),
                Err(e) => error(format!("row_filter is invalid: {e}")),
            }
        }
        let tree = PolicyTree::of(&schema);
        for (column, mask) in &grant.masks {
            let Some(node) = tree.find(column) else {
                continue; // reported by the catalog loader
            };
            if !matches!(node.kind, NestedKind::Leaf) {
                // A mask on a struct masks each field beneath it.
                let unfit = match &mask.kind {
                    MaskKind::Custom { .. } => Some(
                        "is a custom mask: it can mask one column or field, not a struct"
                            .to_string(),
                    ),
                    builtin => node.leaves().iter().find_map(|leaf| {
                        check_builtin_fits(builtin, leaf.field.data_type())
                            .err()
                            .map(|e| format!("does not fit its field '{}': it {e}", leaf.path))
                    }),
                };
                if let Some(e) = unfit {
                    error(format!("mask '{}' on struct '{column}' {e}", mask.name));
                }
                continue;
            }
            let column_type = node.field.data_type();
            let fits = match &mask.kind {
                MaskKind::Custom { sql } => match expression_type(&state, name, sql).await {
                    Ok(t) if &t == column_type || t == DataType::Null => Ok(()),
                    Ok(t) if is_text(&t) && is_text(column_type) => Ok(()),
                    Ok(t) => Err(format!(
                        "returns {t}, but column '{column}' is {column_type}"
                    )),
                    Err(e) => Err(format!("is invalid: {e}")),
                },
                builtin => check_builtin_fits(builtin, column_type),
            };
            if let Err(e) = fits {
                error(format!("mask '{}' on column '{column}' {e}", mask.name));
            }
        }
        checked_pairs.insert((grant.role.clone(), name.clone()));
    }
    if !errors.is_empty() {
        return errors;
    }
    // Roles governed by tags: every table their tags open to them, so that
    // tag row filters are planned on each table they reach.
    for role in catalog.policy.roles() {
        if !catalog.policy.has_tag_policies(&role.name) {
            continue;
        }
        for name in lake.table_names() {
            if lake.access_of(&role.name, name).is_some() {
                checked_pairs.insert((role.name.clone(), name.clone()));
            }
        }
    }
    // Each role's combined plan per table (unions of filters, cell rules).
    for (role, name) in checked_pairs.difference(&unplannable) {
        let raw = lake.raw_table(name).expect("checked above");
        let columns = lake.policy_columns(name).unwrap_or_default();
        let Some(access) = lake.access_of(role, name) else {
            continue;
        };
        if access.is_unrestricted(columns) {
            continue;
        }
        let unchanged = same_table(lake, checked, name)
            && checked.and_then(|c| c.access_of(role, name)).as_ref() == Some(&access);
        if unchanged {
            continue;
        }
        let state = policy_state(lake, role, name);
        let planned = async {
            let plan = plan_policy(&state, &access, &raw.schema()).await?;
            state.create_physical_plan(&plan).await
        };
        if let Err(e) = planned.await {
            let grant = access.grants.first().cloned().unwrap_or_default();
            errors.push(CatalogError {
                file: catalog.grant_file(&grant),
                entry: format!("role '{role}' on table '{name}'"),
                message: format!("the combined policy does not plan: {e}"),
            });
        }
    }
    errors
}

/// The policy context for `role`, resolving unqualified names in `table`'s database.
fn policy_state(lake: &Lake, role: &str, table: &TableName) -> SessionState {
    let mut state = lake.policy_state(CHECK_USER, role);
    state.config_mut().options_mut().catalog.default_schema = table.database.clone();
    state.config_mut().set_extension(Arc::new(CheckOnly));
    state
}

/// The type of `sql` evaluated over the rows of `table`.
async fn expression_type(
    state: &SessionState,
    table: &TableName,
    sql: &str,
) -> Result<DataType, String> {
    check_single_expression(sql)?;
    let sql = accept_session_function_parens(sql);
    let query = format!(
        "SELECT ({sql}) AS \"lakegate_expression\" FROM {}.{}",
        quote_ident(&table.database),
        quote_ident(&table.table)
    );
    let plan = state
        .create_logical_plan(&query)
        .await
        .map_err(|e| e.to_string())?;
    let field = Arc::clone(plan.schema()).field(0).data_type().clone();
    Ok(field)
}
