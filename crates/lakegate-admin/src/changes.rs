//! What a changing statement does to the catalog's content, and whether
//! the caller may do it: every statement is checked against the caller's
//! role in the policy served now, then applied to the store's content as a
//! new set of catalog sections. Nothing here writes: the administration
//! checks the result as a whole catalog and commits it in one transaction.
//!
//! The privilege model:
//!
//! * **`ADMINISTER`** (on the catalog, `on = "*"`) creates and drops
//!   locations, databases, tables, roles, users and groups, and grants roles
//!   to users and groups. `GRANT ADMINISTER` needs it with grant option.
//! * **Data grants** (`SELECT`, `DESCRIBE` on a table, a database or the
//!   catalog) need a grant of the caller's role **with grant option** that
//!   covers the target and confers the privileges, and can only narrow it:
//!   the new grant's columns lie within the grantor's, the grantor's masks
//!   stay on (a different mask on a masked column is refused), and the
//!   grantor's row filter is combined with the new one by `AND`. A grantee
//!   never sees more than its grantor.
//! * **Revoking** a data grant needs `ADMINISTER` or a grant with grant
//!   option covering the revoked grant's target.
//! * **Tags** (definitions, tags set on databases, tables and columns,
//!   grants on tag expressions, tag masks and tag row filters) need
//!   `ADMINISTER`: they reach tables present and future (`tag_changes.rs`).
//! * Nobody may leave the catalog without an administrator (a user who may
//!   assume a role holding `ADMINISTER`).

use lakegate_catalog::{
    Catalog, CatalogFile, CatalogSettings, DatabaseEntry, GrantEntry, GroupEntry,
    PartitionColumnEntry, RoleEntry, StorageEntry, TableEntry, UserEntry, hash_password,
};
use lakegate_policy::{Privilege, TagExpr};

use crate::error::AdminError;
use crate::rights::{Rights, keep_an_administrator, privilege_list, revokes, target_of};
use crate::statement::{AdminStatement, Grantee, Target};
use crate::tag_changes::apply_tag_change;

/// Who runs a statement: the signed-in user under its runtime role.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user.
    pub user: String,
    /// The runtime role.
    pub role: String,
}

/// The catalog's content after a statement, and what the statement did in
/// words.
#[derive(Debug)]
pub(crate) struct Changed {
    pub(crate) content: CatalogFile,
    pub(crate) summary: String,
}

/// Applies the changing statement `statement` by `actor` to `content` (what
/// the store holds), checked against `served` (the policy served now, for
/// the caller's privileges and the tables' columns).
pub(crate) fn apply(
    statement: &AdminStatement,
    actor: &Actor,
    served: &Catalog,
    content: &CatalogFile,
) -> Result<Changed, AdminError> {
    let mut next = content.clone();
    let rights = Rights { actor, served };
    if let Some(summary) = apply_tag_change(statement, &rights, &mut next)? {
        return Ok(Changed {
            content: next,
            summary,
        });
    }
    let summary = match statement {
        AdminStatement::CreateLocation {
            name,
            url,
            settings,
        } => {
            rights.administer()?;
            absent(&next.storage, |e| &e.name, name, "location")?;
            next.storage.push(location_entry(name, url, settings)?);
            format!("location {name} created")
        }
        AdminStatement::DropLocation(name) => {
            rights.administer()?;
            present(&next.storage, |e| &e.name, name, "location")?;
            let used: Vec<String> = next
                .table
                .iter()
                .filter(|t| &t.storage == name)
                .map(|t| format!("{}.{}", t.database, t.name))
                .collect();
            if !used.is_empty() {
                return Err(AdminError::invalid(format!(
                    "location {name} holds tables ({}): drop them first",
                    used.join(", ")
                )));
            }
            next.storage.retain(|e| &e.name != name);
            format!("location {name} dropped")
        }
        AdminStatement::SetDefaultDatabase(name) => {
            rights.administer()?;
            present(&next.database, |e| &e.name, name, "database")?;
            next.catalog
                .get_or_insert(CatalogSettings {
                    name: None,
                    default_database: None,
                })
                .default_database = Some(name.clone());
            format!("sessions start in database {name}")
        }
        AdminStatement::CreateDatabase {
            name,
            location,
            comment,
        } => {
            rights.administer()?;
            absent(&next.database, |e| &e.name, name, "database")?;
            let (storage, path) = match location {
                Some(url) => {
                    let (storage, path) = under_location(served, url)?;
                    (Some(storage), Some(path))
                }
                None => (None, None),
            };
            next.database.push(DatabaseEntry {
                name: name.clone(),
                description: comment.clone(),
                tags: Default::default(),
                storage,
                path,
            });
            format!("database {name} created")
        }
        AdminStatement::DropDatabase(name) => {
            rights.administer()?;
            present(&next.database, |e| &e.name, name, "database")?;
            let tables: Vec<&str> = next
                .table
                .iter()
                .filter(|t| &t.database == name)
                .map(|t| t.name.as_str())
                .collect();
            if !tables.is_empty() {
                return Err(AdminError::invalid(format!(
                    "database {name} holds tables ({}): drop them first",
                    tables.join(", ")
                )));
            }
            if let Some(settings) = &mut next.catalog
                && settings.default_database.as_ref() == Some(name)
            {
                settings.default_database = None;
            }
            next.database.retain(|e| &e.name != name);
            let grants = remove_grants(&mut next, |g| g.on == format!("{name}.*"));
            format!("database {name} dropped{}", with_grants(grants))
        }
        AdminStatement::CreateTable {
            name,
            url,
            format,
            partition_columns,
            comment,
        } => {
            rights.administer()?;
            present(&next.database, |e| &e.name, &name.database, "database")?;
            if next
                .table
                .iter()
                .any(|t| t.database == name.database && t.name == name.table)
            {
                return Err(AdminError::invalid(format!("table {name} exists already")));
            }
            let (storage, path) = under_location(served, url)?;
            next.table.push(TableEntry {
                database: name.database.clone(),
                name: name.table.clone(),
                storage,
                path,
                format: *format,
                partition_columns: partition_columns
                    .iter()
                    .map(|(name, data_type)| PartitionColumnEntry {
                        name: name.clone(),
                        data_type: data_type.clone(),
                    })
                    .collect(),
                description: comment.clone(),
                tags: Default::default(),
                column_tags: Default::default(),
                column_ids: Default::default(),
            });
            format!("table {name} created")
        }
        AdminStatement::DropTable(name) => {
            rights.administer()?;
            let before = next.table.len();
            next.table
                .retain(|t| !(t.database == name.database && t.name == name.table));
            if next.table.len() == before {
                return Err(AdminError::invalid(format!("there is no table {name}")));
            }
            let grants = remove_grants(&mut next, |g| g.on == name.to_string());
            format!("table {name} dropped{}", with_grants(grants))
        }
        AdminStatement::CreateRole { name, comment } => {
            rights.administer()?;
            absent(&next.role, |e| &e.name, name, "role")?;
            next.role.push(RoleEntry {
                name: name.clone(),
                description: comment.clone(),
            });
            format!("role {name} created")
        }
        AdminStatement::DropRole(name) => {
            rights.administer()?;
            present(&next.role, |e| &e.name, name, "role")?;
            next.role.retain(|e| &e.name != name);
            let grants = remove_grants(&mut next, |g| &g.role == name);
            for user in &mut next.user {
                user.may_assume.retain(|r| r != name);
                if user.default_role.as_ref() == Some(name) {
                    user.default_role = None;
                }
            }
            for group in &mut next.group {
                group.may_assume.retain(|r| r != name);
            }
            format!("role {name} dropped{}", with_grants(grants))
        }
        AdminStatement::CreateUser {
            name,
            password,
            default_role,
        } => {
            rights.administer()?;
            absent(&next.user, |e| &e.name, name, "user")?;
            if let Some(password) = password {
                check_password(password)?;
            }
            if let Some(role) = default_role {
                present(&next.role, |e| &e.name, role, "role")?;
            }
            next.user.push(UserEntry {
                name: name.clone(),
                password_hash: password.as_deref().map(hash_password).unwrap_or_default(),
                groups: Vec::new(),
                // The default role is one the user may assume.
                may_assume: default_role.iter().cloned().collect(),
                default_role: default_role.clone(),
            });
            format!("user {name} created")
        }
        AdminStatement::SetPassword { user, password } => {
            // Everyone may change their own password.
            if user != &actor.user {
                rights.administer()?;
            }
            check_password(password)?;
            let entry = find_mut(&mut next.user, |e| &e.name, user, "user")?;
            entry.password_hash = hash_password(password);
            format!("password of user {user} changed")
        }
        AdminStatement::SetDefaultRole { user, role } => {
            rights.administer()?;
            present(&next.role, |e| &e.name, role, "role")?;
            let groups = next.group.clone();
            let entry = find_mut(&mut next.user, |e| &e.name, user, "user")?;
            let may = entry.may_assume.contains(role)
                || groups
                    .iter()
                    .any(|g| entry.groups.contains(&g.name) && g.may_assume.contains(role));
            if !may {
                return Err(AdminError::invalid(format!(
                    "user {user} may not assume role {role}: GRANT ROLE {role} TO USER {user} first"
                )));
            }
            entry.default_role = Some(role.clone());
            format!("default role of user {user} set to {role}")
        }
        AdminStatement::DropUser(name) => {
            rights.administer()?;
            present(&next.user, |e| &e.name, name, "user")?;
            next.user.retain(|e| &e.name != name);
            format!("user {name} dropped")
        }
        AdminStatement::CreateGroup(name) => {
            rights.administer()?;
            absent(&next.group, |e| &e.name, name, "group")?;
            next.group.push(GroupEntry {
                name: name.clone(),
                may_assume: Vec::new(),
            });
            format!("group {name} created")
        }
        AdminStatement::DropGroup(name) => {
            rights.administer()?;
            present(&next.group, |e| &e.name, name, "group")?;
            next.group.retain(|e| &e.name != name);
            for user in &mut next.user {
                user.groups.retain(|g| g != name);
            }
            format!("group {name} dropped")
        }
        AdminStatement::AlterGroup { group, user, add } => {
            rights.administer()?;
            present(&next.group, |e| &e.name, group, "group")?;
            let entry = find_mut(&mut next.user, |e| &e.name, user, "user")?;
            let member = entry.groups.contains(group);
            if *add {
                if member {
                    return Err(AdminError::invalid(format!(
                        "user {user} is in group {group} already"
                    )));
                }
                entry.groups.push(group.clone());
                format!("user {user} added to group {group}")
            } else {
                if !member {
                    return Err(AdminError::invalid(format!(
                        "user {user} is not in group {group}"
                    )));
                }
                entry.groups.retain(|g| g != group);
                format!("user {user} removed from group {group}")
            }
        }
        AdminStatement::GrantRole { role, to } => {
            rights.administer()?;
            present(&next.role, |e| &e.name, role, "role")?;
            let list = assumable(&mut next, to)?;
            if list.contains(role) {
                return Err(AdminError::invalid(format!(
                    "{to} may assume role {role} already"
                )));
            }
            list.push(role.clone());
            format!("{to} may assume role {role}")
        }
        AdminStatement::RevokeRole { role, from } => {
            rights.administer()?;
            let list = assumable(&mut next, from)?;
            if !list.contains(role) {
                return Err(AdminError::invalid(format!(
                    "{from} does not hold role {role}"
                )));
            }
            list.retain(|r| r != role);
            // A default role that can no longer be assumed is unset.
            let groups = next.group.clone();
            for user in &mut next.user {
                let still = user.may_assume.contains(role)
                    || groups
                        .iter()
                        .any(|g| user.groups.contains(&g.name) && g.may_assume.contains(role));
                if user.default_role.as_ref() == Some(role) && !still {
                    user.default_role = None;
                }
            }
            format!("{from} may no longer assume role {role}")
        }
        AdminStatement::Grant(grant) => {
            let entry = rights.data_grant(grant, &next)?;
            let summary = format!(
                "granted {} on {} to role {} as {}",
                privilege_list(&grant.privileges),
                grant.target,
                grant.role,
                entry.name
            );
            next.grant.push(entry);
            summary
        }
        AdminStatement::Revoke {
            privileges,
            target,
            role,
        } => {
            rights.may_revoke(target)?;
            let mut touched = 0;
            for entry in next
                .grant
                .iter_mut()
                .filter(|g| &g.role == role && is_on(g, target))
            {
                let before = entry.privileges.len();
                entry
                    .privileges
                    .retain(|p| Privilege::parse(p).is_none_or(|p| !revokes(privileges, p)));
                touched += usize::from(entry.privileges.len() != before);
            }
            if touched == 0 {
                return Err(AdminError::invalid(format!(
                    "role {role} holds no {} grant on {target}",
                    privilege_list(privileges)
                )));
            }
            let emptied = remove_grants(&mut next, |g| g.privileges.is_empty());
            format!(
                "revoked {} on {target} from role {role} ({touched} grant(s) changed, {emptied} removed)",
                privilege_list(privileges)
            )
        }
        AdminStatement::RevokeGrant(name) => {
            let entry = next
                .grant
                .iter()
                .find(|g| &g.name == name)
                .ok_or_else(|| AdminError::invalid(format!("there is no grant {name}")))?;
            if entry.tagged.is_some() {
                // Grants on tag expressions are the lake administrator's.
                rights.administer()?;
            } else {
                rights.may_revoke(&target_of(&entry.on)?)?;
            }
            next.grant.retain(|g| &g.name != name);
            format!("grant {name} revoked")
        }
        show => {
            return Err(AdminError::invalid(format!(
                "{} changes nothing",
                show.kind()
            )));
        }
    };
    keep_an_administrator(content, &next)?;
    Ok(Changed {
        content: next,
        summary,
    })
}

/// Removes the grants `matches` selects; how many.
fn remove_grants(content: &mut CatalogFile, matches: impl Fn(&GrantEntry) -> bool) -> usize {
    let before = content.grant.len();
    content.grant.retain(|g| !matches(g));
    before - content.grant.len()
}

fn with_grants(removed: usize) -> String {
    if removed == 0 {
        String::new()
    } else {
        format!(" with its {removed} grant(s)")
    }
}

/// The roles `grantee` may assume, to change.
fn assumable<'c>(
    content: &'c mut CatalogFile,
    grantee: &Grantee,
) -> Result<&'c mut Vec<String>, AdminError> {
    Ok(match grantee {
        Grantee::User(name) => {
            &mut find_mut(&mut content.user, |e| &e.name, name, "user")?.may_assume
        }
        Grantee::Group(name) => {
            &mut find_mut(&mut content.group, |e| &e.name, name, "group")?.may_assume
        }
    })
}

fn absent<T>(
    entries: &[T],
    name_of: impl Fn(&T) -> &String,
    name: &str,
    kind: &str,
) -> Result<(), AdminError> {
    if entries.iter().any(|e| name_of(e) == name) {
        Err(AdminError::invalid(format!("{kind} {name} exists already")))
    } else {
        Ok(())
    }
}

pub(crate) fn present<T>(
    entries: &[T],
    name_of: impl Fn(&T) -> &String,
    name: &str,
    kind: &str,
) -> Result<(), AdminError> {
    if entries.iter().any(|e| name_of(e) == name) {
        Ok(())
    } else {
        Err(AdminError::invalid(format!("there is no {kind} {name}")))
    }
}

fn find_mut<'e, T>(
    entries: &'e mut [T],
    name_of: impl Fn(&T) -> &String,
    name: &str,
    kind: &str,
) -> Result<&'e mut T, AdminError> {
    entries
        .iter_mut()
        .find(|e| name_of(e) == name)
        .ok_or_else(|| AdminError::invalid(format!("there is no {kind} {name}")))
}

fn check_password(password: &str) -> Result<(), AdminError> {
    if password.is_empty() {
        Err(AdminError::invalid("the password is empty"))
    } else {
        Ok(())
    }
}

/// A `[[storage]]` entry from `CREATE LOCATION`'s settings, refusing inline
/// secrets by name.
fn location_entry(
    name: &str,
    url: &str,
    settings: &[(String, toml::Value)],
) -> Result<StorageEntry, AdminError> {
    let mut table = toml::Table::new();
    table.insert("name".into(), toml::Value::String(name.into()));
    table.insert("url".into(), toml::Value::String(url.into()));
    for (key, value) in settings {
        if matches!(key.as_str(), "name" | "url") {
            return Err(AdminError::invalid(format!(
                "{key} is given by CREATE LOCATION itself, not in WITH"
            )));
        }
        if table.insert(key.clone(), value.clone()).is_some() {
            return Err(AdminError::invalid(format!("setting {key} given twice")));
        }
    }
    let entry: StorageEntry =
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                AdminError::invalid(format!("invalid location setting: {}", e.message()))
            })?;
    if let Some((key, instead)) = entry.inline_secrets().first() {
        return Err(AdminError::invalid(format!(
            "{key} would put a secret in the policy store: name the environment variable \
             holding it with {instead}"
        )));
    }
    if !url.contains("://") && !url.starts_with('/') && !url.starts_with("${data_dir}") {
        return Err(AdminError::invalid(format!(
            "location URL '{url}' is relative: give a URL (file:///..., s3://...) or an \
             absolute path"
        )));
    }
    Ok(entry)
}

/// Where a table or a database's new tables at `url` are declared: a
/// registered location and the path under it.
fn under_location(served: &Catalog, url: &str) -> Result<(String, String), AdminError> {
    served.place_of(url).map_err(AdminError::invalid)
}

/// Whether grant entry `entry` is on exactly `target` (a tag expression
/// compared as an expression, however its entry spells it).
fn is_on(entry: &GrantEntry, target: &Target) -> bool {
    match target {
        Target::Tagged(expr) => entry
            .tagged
            .as_deref()
            .and_then(|text| text.parse::<TagExpr>().ok())
            .is_some_and(|held| &held == expr),
        other => entry.tagged.is_none() && entry.on == other.on(),
    }
}
