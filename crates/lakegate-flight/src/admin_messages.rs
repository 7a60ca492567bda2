//! The administration API's messages (`proto/lakegate/admin/v1/admin.proto`)
//! as administration statements and back: what a request stands for, with
//! a clear error for a field missing or out of range, and grants as
//! `ListGrants` gives them.

use lakegate_admin::{AdminError, AdminStatement, Columns, DataGrant, Grantee, MaskSpec, Target};
use lakegate_admin_api::v1 as api;
use lakegate_policy::{ColumnSelection, Grant, MaskKind, Privilege, TableName};

use crate::admin_tags;
use crate::error::{CallError, CallResult};

/// The statement a `GrantRequest` stands for.
pub(crate) fn grant_statement(message: &api::GrantRequest) -> CallResult<AdminStatement> {
    let columns = match (&message.columns[..], &message.excluding_columns[..]) {
        ([], []) => Columns::All,
        (only, []) => Columns::Only(only.to_vec()),
        ([], excluding) => Columns::Excluding(excluding.to_vec()),
        _ => {
            return Err(invalid(
                "columns and excluding_columns are exclusive: give one of them",
            ));
        }
    };
    let masks = message
        .masks
        .iter()
        .map(|mask| {
            let spec = match &mask.mask {
                Some(api::mask::Mask::Builtin(name)) => MaskSpec::Builtin(name.clone()),
                Some(api::mask::Mask::Expression(sql)) => MaskSpec::Expression(sql.clone()),
                None => return Err(missing("mask")),
            };
            Ok((required(&mask.column, "mask column")?, spec))
        })
        .collect::<CallResult<Vec<_>>>()?;
    Ok(AdminStatement::Grant(DataGrant {
        privileges: privileges(&message.privileges)?,
        target: target(message.target.as_ref())?,
        role: required(&message.role, "role")?,
        columns,
        masks,
        row_filter: optional(&message.row_filter),
        name: optional(&message.name),
        grantable: message.with_grant_option,
    }))
}

/// A policy grant as `ListGrants` gives it.
pub(crate) fn grant_message(grant: &Grant) -> api::Grant {
    let (columns, excluding_columns) = match &grant.columns {
        ColumnSelection::All => (Vec::new(), Vec::new()),
        ColumnSelection::Include(columns) => (columns.clone(), Vec::new()),
        ColumnSelection::Exclude(columns) => (Vec::new(), columns.clone()),
    };
    api::Grant {
        name: grant.name.clone(),
        role: grant.role.clone(),
        on: grant.resource.to_string(),
        privileges: grant
            .privileges
            .iter()
            .map(|p| privilege_message(*p) as i32)
            .collect(),
        grantable: grant.grantable,
        columns,
        excluding_columns,
        masks: grant
            .masks
            .iter()
            .map(|(column, mask)| api::Mask {
                column: column.clone(),
                mask: Some(match &mask.kind {
                    MaskKind::Custom { sql } => api::mask::Mask::Expression(sql.clone()),
                    _ => api::mask::Mask::Builtin(mask.name.clone()),
                }),
            })
            .collect(),
        row_filter: grant.row_filter.clone().unwrap_or_default(),
    }
}

pub(crate) fn privilege_message(privilege: Privilege) -> api::Privilege {
    match privilege {
        Privilege::Select => api::Privilege::Select,
        Privilege::Describe => api::Privilege::Describe,
        Privilege::Administer => api::Privilege::Administer,
        Privilege::Assign => api::Privilege::Assign,
        Privilege::Insert => api::Privilege::Insert,
        Privilege::CreateTable => api::Privilege::CreateTable,
    }
}

pub(crate) fn privileges(values: &[i32]) -> CallResult<Vec<Privilege>> {
    if values.is_empty() {
        return Err(missing("privileges"));
    }
    let mut privileges = values
        .iter()
        .map(|value| match api::Privilege::try_from(*value) {
            Ok(api::Privilege::Select) => Ok(Privilege::Select),
            Ok(api::Privilege::Describe) => Ok(Privilege::Describe),
            Ok(api::Privilege::Administer) => Ok(Privilege::Administer),
            Ok(api::Privilege::Assign) => Ok(Privilege::Assign),
            Ok(api::Privilege::Insert) => Ok(Privilege::Insert),
            Ok(api::Privilege::CreateTable) => Ok(Privilege::CreateTable),
            _ => Err(invalid(format!("unknown privilege {value}"))),
        })
        .collect::<CallResult<Vec<_>>>()?;
    privileges.sort();
    privileges.dedup();
    Ok(privileges)
}

pub(crate) fn target(target: Option<&api::Target>) -> CallResult<Target> {
    match target.and_then(|t| t.target.as_ref()) {
        Some(api::target::Target::Table(name)) => table_name(name).map(Target::Table),
        Some(api::target::Target::Database(database)) => {
            required(database, "database").map(Target::Database)
        }
        Some(api::target::Target::Catalog(true)) => Ok(Target::Catalog),
        Some(api::target::Target::Tagged(text)) => admin_tags::tag_expr(text).map(Target::Tagged),
        Some(api::target::Target::Tag(key)) => required(key, "tag").map(Target::Tag),
        _ => Err(missing("target (table, database, catalog, tagged or tag)")),
    }
}

pub(crate) fn grantee(principal: Option<&api::role_assignment::Principal>) -> CallResult<Grantee> {
    match principal {
        Some(api::role_assignment::Principal::User(user)) => {
            required(user, "user").map(Grantee::User)
        }
        Some(api::role_assignment::Principal::Group(group)) => {
            required(group, "group").map(Grantee::Group)
        }
        None => Err(missing("user or group")),
    }
}

pub(crate) fn table_name(name: &api::TableName) -> CallResult<TableName> {
    Ok(TableName::new(
        required(&name.database, "database")?,
        required(&name.table, "table")?,
    ))
}

/// A location setting given as text: a number or a boolean when it reads as
/// one (the settings' types are checked with the location).
pub(crate) fn setting_value(text: &str) -> toml::Value {
    if let Ok(number) = text.parse::<i64>() {
        return toml::Value::Integer(number);
    }
    match text {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_string()),
    }
}

pub(crate) fn required(value: &str, what: &str) -> CallResult<String> {
    if value.trim().is_empty() {
        Err(missing(what))
    } else {
        Ok(value.to_string())
    }
}

pub(crate) fn optional(value: &str) -> Option<String> {
    (!value.trim().is_empty()).then(|| value.to_string())
}

pub(crate) fn missing(what: &str) -> CallError {
    invalid(format!("{what} is required"))
}

pub(crate) fn invalid(message: impl Into<String>) -> CallError {
    CallError::Admin(AdminError::Invalid {
        message: message.into(),
        position: None,
    })
}
