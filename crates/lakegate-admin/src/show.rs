//! The `SHOW` statements' answers, from the policy served now. Lake
//! administrators (`ADMINISTER`) see everything; any other role sees its
//! own grants, the roles it may assume and its own effective access.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use lakegate_catalog::Catalog;
use lakegate_engine::PolicySnapshot;
use lakegate_policy::{
    ColumnSelection, EffectiveAccess, Grant, MaskKind, Resource, RowFilter, TableName,
};

use crate::changes::Actor;
use crate::error::AdminError;
use crate::statement::AdminStatement;

/// The answer of a `SHOW` statement.
pub(crate) fn show(
    statement: &AdminStatement,
    actor: &Actor,
    served: &PolicySnapshot,
) -> Result<RecordBatch, AdminError> {
    let catalog = served.catalog();
    let admin = catalog.policy.may_administer(&actor.role, false);
    let only_admin = |what: &str| {
        if admin {
            Ok(())
        } else {
            Err(not_administrator(actor, what))
        }
    };
    match statement {
        AdminStatement::ShowGrants { role, table } => {
            let grants = visible_grants(actor, served, role.as_deref(), table.as_ref())?;
            Ok(grants_batch(&grants.iter().collect::<Vec<_>>()))
        }
        AdminStatement::ShowRoles => {
            let assumable = catalog.policy.assumable_roles(&actor.user);
            let rows: Vec<[String; 2]> = catalog
                .policy
                .roles()
                .filter(|r| admin || assumable.contains(&r.name))
                .map(|r| [r.name.clone(), r.description.clone()])
                .collect();
            Ok(text_batch(&["name", "description"], rows))
        }
        AdminStatement::ShowUsers => {
            only_admin("SHOW USERS")?;
            let rows: Vec<[String; 4]> = catalog
                .policy
                .users()
                .map(|u| {
                    [
                        u.name.clone(),
                        u.groups.join(", "),
                        u.may_assume.join(", "),
                        u.default_role.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            Ok(text_batch(
                &["name", "groups", "may_assume", "default_role"],
                rows,
            ))
        }
        AdminStatement::ShowGroups => {
            only_admin("SHOW GROUPS")?;
            Ok(text_batch(
                &["name", "may_assume", "members"],
                group_rows(catalog),
            ))
        }
        AdminStatement::ShowLocations => {
            only_admin("SHOW LOCATIONS")?;
            let rows: Vec<[String; 2]> = catalog
                .storage
                .values()
                .map(|l| [l.name.clone(), l.url.to_string()])
                .collect();
            Ok(text_batch(&["name", "url"], rows))
        }
        AdminStatement::ShowEffectiveAccess { role, table } => {
            let access = effective_access(actor, served, role, table)?;
            let mut rows = Vec::new();
            for access in &access {
                let rows_rule = rows_text(access);
                let privilege = if access.can_select {
                    "SELECT"
                } else {
                    "DESCRIBE"
                };
                let grants = access.grants.join(", ");
                for (column, rule) in column_rules(access) {
                    rows.push([
                        column,
                        rule,
                        rows_rule.clone(),
                        privilege.to_string(),
                        grants.clone(),
                    ]);
                }
            }
            Ok(text_batch(
                &["column", "access", "rows", "privilege", "grants"],
                rows,
            ))
        }
        AdminStatement::ShowTags { table: None } => {
            only_admin("SHOW TAGS")?;
            let rows: Vec<[String; 2]> = catalog
                .policy
                .tag_definitions()
                .values()
                .map(|d| {
                    let values: Vec<&str> = d.values.iter().map(String::as_str).collect();
                    [d.key.clone(), values.join(", ")]
                })
                .collect();
            Ok(text_batch(&["key", "values"], rows))
        }
        AdminStatement::ShowTags { table: Some(table) } => {
            only_admin("SHOW TAGS")?;
            if catalog.table(table).is_none() {
                return Err(AdminError::invalid(format!("there is no table {table}")));
            }
            Ok(text_batch(
                &["resource", "key", "value", "set_on"],
                tag_rows(catalog, table),
            ))
        }
        other => Err(AdminError::invalid(format!(
            "{} is not a SHOW statement",
            other.kind()
        ))),
    }
}

/// The tags of `table` (its own and those it inherits, with where each is
/// set) and of its columns (their own; a column carries its table's tags
/// besides), as `SHOW TAGS ON TABLE` lists them.
fn tag_rows(catalog: &Catalog, table: &TableName) -> Vec<[String; 4]> {
    let tagging = catalog.policy.tagging();
    let own = tagging.tables.get(table);
    let mut rows = Vec::new();
    for (key, value) in tagging.table_tags(table) {
        let set_on = if own.is_some_and(|tags| tags.contains_key(&key)) {
            "table".to_string()
        } else {
            format!("database {} (inherited)", table.database)
        };
        rows.push(["table".to_string(), key, value, set_on]);
    }
    if let Some(columns) = tagging.columns.get(table) {
        for (column, tags) in columns {
            for (key, value) in tags {
                rows.push([
                    format!("column {column}"),
                    key.clone(),
                    value.clone(),
                    "column".to_string(),
                ]);
            }
        }
    }
    rows
}

/// The grants `SHOW GRANTS` lists for `actor`: an administrator's choice
/// (every role's, or `role`'s), anyone else's own role's; covering `table`
/// when given.
pub(crate) fn visible_grants(
    actor: &Actor,
    served: &PolicySnapshot,
    role: Option<&str>,
    table: Option<&TableName>,
) -> Result<Vec<Grant>, AdminError> {
    let policy = &served.catalog().policy;
    let admin = policy.may_administer(&actor.role, false);
    if !admin && role.is_some_and(|r| r != actor.role) {
        return Err(not_administrator(actor, "SHOW GRANTS of another role"));
    }
    let wanted = role.or((!admin).then_some(actor.role.as_str()));
    let columns = table
        .and_then(|t| served.catalog().table(t))
        .map(|t| t.policy_columns())
        .unwrap_or_default();
    // A grant on a tag expression covers a table when its tags reach it:
    // the role's access to the table then names the grant.
    let reaches = |grant: &Grant, table: &TableName| match &grant.resource {
        Resource::Tagged(_) => policy
            .effective_access(&grant.role, table, &columns)
            .is_some_and(|access| access.grants.contains(&grant.name)),
        other => other.covers(table),
    };
    Ok(policy
        .grants()
        .filter(|g| wanted.is_none_or(|r| g.role == r))
        .filter(|g| table.is_none_or(|t| reaches(g, t)))
        .cloned()
        .collect())
}

/// What `role` sees of `table`, for `actor` (an administrator, or a role
/// asking about itself).
pub(crate) fn effective_access(
    actor: &Actor,
    served: &PolicySnapshot,
    role: &str,
    table: &TableName,
) -> Result<Vec<EffectiveAccess>, AdminError> {
    if role != actor.role && !served.catalog().policy.may_administer(&actor.role, false) {
        return Err(not_administrator(
            actor,
            "SHOW EFFECTIVE ACCESS of another role",
        ));
    }
    served
        .access(role, Some(table))
        .map_err(|e| AdminError::invalid(e.to_string()))
}

/// Each column of `access` with how the role sees it (`hidden` last).
pub fn column_rules(access: &EffectiveAccess) -> Vec<(String, String)> {
    access
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.rule_text(&access.row_filter)))
        .chain(
            access
                .hidden_columns
                .iter()
                .map(|c| (c.clone(), "hidden".to_string())),
        )
        .collect()
}

/// The rows a role sees, in words: `all`, or each grant's filter, then
/// each tag row filter every row must also pass.
pub fn rows_text(access: &EffectiveAccess) -> String {
    let union = match &access.row_filter {
        RowFilter::AllRows => "all".to_string(),
        RowFilter::AnyOf(predicates) => predicates
            .iter()
            .map(|p| format!("[{}] {}", p.grant, p.sql))
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    let mut text = union;
    for restriction in &access.restrictions {
        text.push_str(&format!(" AND [{}] {}", restriction.grant, restriction.sql));
    }
    text
}

fn not_administrator(actor: &Actor, what: &str) -> AdminError {
    AdminError::PermissionDenied(format!(
        "role {} lacks the privilege ADMINISTER on the catalog, which {what} needs",
        actor.role
    ))
}

/// Each group, the roles it may assume and its members.
fn group_rows(catalog: &Catalog) -> Vec<[String; 3]> {
    let mut groups: Vec<[String; 3]> = Vec::new();
    for group in catalog.policy.groups() {
        let members: Vec<&str> = catalog
            .policy
            .users()
            .filter(|u| u.groups.contains(&group.name))
            .map(|u| u.name.as_str())
            .collect();
        groups.push([
            group.name.clone(),
            group.may_assume.join(", "),
            members.join(", "),
        ]);
    }
    groups
}

/// The grants as `SHOW GRANTS` lists them.
fn grants_batch(grants: &[&Grant]) -> RecordBatch {
    let text = |f: &dyn Fn(&Grant) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(grants.iter().map(|g| f(g))))
    };
    let optional = |f: &dyn Fn(&Grant) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(grants.iter().map(|g| f(g))))
    };
    let schema = Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("on", DataType::Utf8, false),
        Field::new("privileges", DataType::Utf8, false),
        Field::new("grantable", DataType::Boolean, false),
        Field::new("columns", DataType::Utf8, false),
        Field::new("masks", DataType::Utf8, true),
        Field::new("row_filter", DataType::Utf8, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        text(&|g| g.name.clone()),
        text(&|g| g.role.clone()),
        text(&|g| g.resource.to_string()),
        text(&|g| {
            g.privileges
                .iter()
                .map(|p| p.name().to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(", ")
        }),
        Arc::new(BooleanArray::from_iter(
            grants.iter().map(|g| Some(g.grantable)),
        )),
        text(&|g| match &g.columns {
            ColumnSelection::All => "all".into(),
            ColumnSelection::Include(c) => c.join(", "),
            ColumnSelection::Exclude(c) => format!("all but {}", c.join(", ")),
        }),
        optional(&|g| {
            (!g.masks.is_empty()).then(|| {
                g.masks
                    .iter()
                    .map(|(column, mask)| match &mask.kind {
                        MaskKind::Custom { sql } => format!("{column}: {} ({sql})", mask.name),
                        _ => format!("{column}: {}", mask.name),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        }),
        optional(&|g| g.row_filter.clone()),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("the columns match the schema")
}

/// A batch of text columns named `names`, one row per array.
fn text_batch<const N: usize>(names: &[&str; N], rows: Vec<[String; N]>) -> RecordBatch {
    let schema = Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    );
    let columns: Vec<ArrayRef> = (0..N)
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(Arc::new(schema), columns).expect("the columns match the schema")
}
