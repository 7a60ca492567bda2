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
//! * Nobody may leave the catalog without an administrator (a user who may
//!   assume a role holding `ADMINISTER`).

use std::collections::{BTreeMap, BTreeSet};

use lakegate_catalog::{
    Catalog, CatalogFile, CatalogSettings, CustomMaskEntry, DatabaseEntry, GrantEntry, GroupEntry,
    MaskEntry, PartitionColumnEntry, RoleEntry, StorageEntry, TableEntry, UserEntry, hash_password,
};
use lakegate_policy::{ColumnMask, ColumnSelection, Grant, MaskKind, Privilege, Resource};

use crate::error::AdminError;
use crate::statement::{AdminStatement, Columns, DataGrant, Grantee, MaskSpec, Target};

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
        AdminStatement::CreateDatabase { name, comment } => {
            rights.administer()?;
            absent(&next.database, |e| &e.name, name, "database")?;
            next.database.push(DatabaseEntry {
                name: name.clone(),
                description: comment.clone(),
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
                partition_columns: partition_columns
                    .iter()
                    .map(|(name, data_type)| PartitionColumnEntry {
                        name: name.clone(),
                        data_type: data_type.clone(),
                    })
                    .collect(),
                description: comment.clone(),
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
            check_password(password)?;
            if let Some(role) = default_role {
                present(&next.role, |e| &e.name, role, "role")?;
            }
            next.user.push(UserEntry {
                name: name.clone(),
                password_hash: hash_password(password),
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
            let on = target.on();
            let mut touched = 0;
            for entry in next
                .grant
                .iter_mut()
                .filter(|g| &g.role == role && g.on == on)
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
            let target = target_of(&entry.on)?;
            rights.may_revoke(&target)?;
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

/// The caller's rights, in the policy served now.
struct Rights<'a> {
    actor: &'a Actor,
    served: &'a Catalog,
}

impl Rights<'_> {
    /// Refused unless the caller's role holds `ADMINISTER`.
    fn administer(&self) -> Result<(), AdminError> {
        if self.served.policy.may_administer(&self.actor.role, false) {
            Ok(())
        } else {
            Err(self.missing("ADMINISTER on the catalog"))
        }
    }

    fn missing(&self, privilege: &str) -> AdminError {
        AdminError::PermissionDenied(format!(
            "role {} lacks the privilege {privilege}",
            self.actor.role
        ))
    }

    /// Refused unless the caller may revoke grants on `target`.
    fn may_revoke(&self, target: &Target) -> Result<(), AdminError> {
        let resource = resource_of(target);
        let role = &self.actor.role;
        let covering = self
            .served
            .policy
            .grants_of(role)
            .iter()
            .any(|g| g.grantable && covers(&g.resource, &resource));
        if covering || self.served.policy.may_administer(role, false) {
            Ok(())
        } else {
            Err(self.missing(&format!(
                "ADMINISTER, or a grant with grant option on {target}"
            )))
        }
    }

    /// The grant entry `grant` makes, narrowed to what the caller may pass
    /// on; refused when the caller holds nothing it may pass on.
    fn data_grant(
        &self,
        grant: &DataGrant,
        content: &CatalogFile,
    ) -> Result<GrantEntry, AdminError> {
        if !content.role.iter().any(|r| r.name == grant.role) {
            return Err(AdminError::invalid(format!(
                "there is no role {}",
                grant.role
            )));
        }
        if let Some(name) = &grant.name
            && content.grant.iter().any(|g| &g.name == name)
        {
            return Err(AdminError::invalid(format!("grant {name} exists already")));
        }
        let administer = grant.privileges.contains(&Privilege::Administer);
        if administer {
            if grant.target != Target::Catalog || grant.privileges.len() > 1 {
                return Err(AdminError::invalid(
                    "ADMINISTER is granted alone, ON CATALOG",
                ));
            }
            if !self.served.policy.may_administer(&self.actor.role, true) {
                return Err(self.missing("ADMINISTER with grant option"));
            }
        }
        let single_table = matches!(grant.target, Target::Table(_));
        let restricted =
            grant.columns != Columns::All || !grant.masks.is_empty() || grant.row_filter.is_some();
        if restricted && !single_table {
            return Err(AdminError::invalid(format!(
                "columns, masks and row filters are granted on one table, not on {}",
                grant.target
            )));
        }
        match &grant.target {
            Target::Database(database) => {
                present(&content.database, |e| &e.name, database, "database")?;
            }
            Target::Table(name)
                if !content
                    .table
                    .iter()
                    .any(|t| t.database == name.database && t.name == name.table) =>
            {
                return Err(AdminError::invalid(format!("there is no table {name}")));
            }
            _ => {}
        }
        let mut entry = GrantEntry {
            name: grant
                .name
                .clone()
                .unwrap_or_else(|| fresh_grant_name(content, grant)),
            role: grant.role.clone(),
            on: grant.target.on(),
            privileges: grant
                .privileges
                .iter()
                .map(|p| p.name().to_string())
                .collect(),
            grantable: grant.grantable,
            include_columns: match &grant.columns {
                Columns::Only(columns) => Some(columns.clone()),
                _ => None,
            },
            exclude_columns: match &grant.columns {
                Columns::Excluding(columns) => Some(columns.clone()),
                _ => None,
            },
            row_filter: grant.row_filter.clone(),
            masks: grant
                .masks
                .iter()
                .map(|(column, mask)| (column.clone(), mask_entry(column, mask)))
                .collect(),
        };
        if administer {
            return Ok(entry);
        }
        self.narrow(grant, &mut entry)?;
        Ok(entry)
    }

    /// Narrows `entry` to one of the caller's grants with grant option that
    /// covers it, or refuses.
    fn narrow(&self, grant: &DataGrant, entry: &mut GrantEntry) -> Result<(), AdminError> {
        let resource = resource_of(&grant.target);
        let role = &self.actor.role;
        let candidates: Vec<&Grant> = self
            .served
            .policy
            .grants_of(role)
            .iter()
            .filter(|g| {
                g.grantable
                    && covers(&g.resource, &resource)
                    && grant.privileges.iter().all(|p| g.confers(*p))
            })
            .collect();
        if candidates.is_empty() {
            return Err(self.missing(&format!(
                "{} on {} with grant option",
                privilege_list(&grant.privileges),
                grant.target
            )));
        }
        let Target::Table(name) = &grant.target else {
            // Databases and the catalog: only unrestricted grants cover them.
            return Ok(());
        };
        let columns = match self.served.table(name) {
            Some(table) => table.column_names(),
            None => {
                return Err(AdminError::invalid(format!(
                    "table {name} is not served yet: retry once it is"
                )));
            }
        };
        let wanted = selection(entry);
        let exposed: Vec<&String> = columns.iter().filter(|c| wanted.admits(c)).collect();
        let mut refusal = None;
        for grantor in candidates {
            let beyond: Vec<&str> = exposed
                .iter()
                .filter(|c| !grantor.columns.admits(c))
                .map(|c| c.as_str())
                .collect();
            if !beyond.is_empty() {
                refusal = Some(self.missing(&format!(
                    "SELECT with grant option on columns {} of {name}",
                    beyond.join(", ")
                )));
                continue;
            }
            // The grantor's masks stay on every column it masks.
            let mut masks = entry.masks.clone();
            let mut remasked = None;
            for (column, mask) in &grantor.masks {
                if !wanted.admits(column) {
                    continue;
                }
                match masks.get(column) {
                    None => {
                        masks.insert(column.clone(), mask_entry_of(mask));
                    }
                    Some(given) if same_mask(given, mask) => {}
                    Some(_) => remasked = Some(column.clone()),
                }
            }
            if let Some(column) = remasked {
                refusal = Some(AdminError::PermissionDenied(format!(
                    "column {column} of {name} is masked for role {role}; a grant of it keeps \
                     that mask"
                )));
                continue;
            }
            entry.masks = masks;
            // And its row filter narrows the new one.
            if let Some(filter) = &grantor.row_filter {
                entry.row_filter = Some(match &entry.row_filter {
                    Some(given) => format!("({filter}) AND ({given})"),
                    None => filter.clone(),
                });
            }
            return Ok(());
        }
        Err(refusal.expect("at least one candidate was tried"))
    }
}

/// Whether `holder` covers `wanted` (every table `wanted` covers).
fn covers(holder: &Resource, wanted: &Resource) -> bool {
    match (holder, wanted) {
        (Resource::AllDatabases, _) => true,
        (Resource::AllTablesIn(db), Resource::AllTablesIn(other)) => db == other,
        (Resource::AllTablesIn(_), Resource::Table(table)) => holder.covers(table),
        (Resource::Table(a), Resource::Table(b)) => a == b,
        _ => false,
    }
}

fn resource_of(target: &Target) -> Resource {
    match target {
        Target::Table(name) => Resource::Table(name.clone()),
        Target::Database(database) => Resource::AllTablesIn(database.clone()),
        Target::Catalog => Resource::AllDatabases,
    }
}

fn target_of(on: &str) -> Result<Target, AdminError> {
    Ok(match Resource::parse(on) {
        Some(Resource::Table(name)) => Target::Table(name),
        Some(Resource::AllTablesIn(database)) => Target::Database(database),
        Some(Resource::AllDatabases) => Target::Catalog,
        None => return Err(AdminError::invalid(format!("invalid grant target '{on}'"))),
    })
}

/// The column selection of a grant entry.
fn selection(entry: &GrantEntry) -> ColumnSelection {
    match (&entry.include_columns, &entry.exclude_columns) {
        (Some(columns), _) => ColumnSelection::Include(columns.clone()),
        (None, Some(columns)) => ColumnSelection::Exclude(columns.clone()),
        (None, None) => ColumnSelection::All,
    }
}

/// Whether revoking `revoked` takes `held` away (revoking SELECT leaves
/// DESCRIBE; revoking DESCRIBE takes SELECT too, which implies it).
fn revokes(revoked: &[Privilege], held: Privilege) -> bool {
    revoked.contains(&held) || (held == Privilege::Select && revoked.contains(&Privilege::Describe))
}

fn mask_entry(column: &str, mask: &MaskSpec) -> MaskEntry {
    match mask {
        MaskSpec::Builtin(name) => MaskEntry::Builtin(name.clone()),
        MaskSpec::Expression(expression) => MaskEntry::Custom(CustomMaskEntry {
            name: format!("{column}_mask"),
            expression: expression.clone(),
        }),
    }
}

fn mask_entry_of(mask: &ColumnMask) -> MaskEntry {
    match &mask.kind {
        MaskKind::Custom { sql } => MaskEntry::Custom(CustomMaskEntry {
            name: mask.name.clone(),
            expression: sql.clone(),
        }),
        _ => MaskEntry::Builtin(mask.name.clone()),
    }
}

fn same_mask(given: &MaskEntry, held: &ColumnMask) -> bool {
    match (given, &held.kind) {
        (MaskEntry::Builtin(name), kind) => MaskKind::builtin(name).as_ref() == Some(kind),
        (MaskEntry::Custom(custom), MaskKind::Custom { sql }) => {
            custom.expression.trim() == sql.trim()
        }
        _ => false,
    }
}

/// A grant name not taken yet: `role_db_table`, then `_2`, `_3`...
fn fresh_grant_name(content: &CatalogFile, grant: &DataGrant) -> String {
    let base = match &grant.target {
        Target::Table(name) => format!("{}_{}_{}", grant.role, name.database, name.table),
        Target::Database(database) => format!("{}_{database}", grant.role),
        Target::Catalog => format!("{}_catalog", grant.role),
    };
    let taken: BTreeSet<&str> = content.grant.iter().map(|g| g.name.as_str()).collect();
    if !taken.contains(base.as_str()) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}_{n}"))
        .find(|name| !taken.contains(name.as_str()))
        .expect("some suffix is free")
}

fn privilege_list(privileges: &[Privilege]) -> String {
    privileges
        .iter()
        .map(|p| p.name().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
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

fn present<T>(
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

/// The location holding `url`, and the path of `url` under it.
fn under_location(served: &Catalog, url: &str) -> Result<(String, String), AdminError> {
    let wanted = url::Url::parse(url)
        .or_else(|_| url::Url::from_file_path(url))
        .map_err(|_| AdminError::invalid(format!("LOCATION '{url}' is not a URL")))?;
    let mut best: Option<(&str, String)> = None;
    for location in served.storage.values() {
        let root = location.url.as_str();
        if let Some(path) = wanted.as_str().strip_prefix(root)
            && best.as_ref().is_none_or(|(_, p)| path.len() < p.len())
        {
            best = Some((location.name.as_str(), path.to_string()));
        }
    }
    match best {
        Some((_, path)) if path.is_empty() => Err(AdminError::invalid(format!(
            "LOCATION '{url}' is a location's root: a table lies in a directory under it"
        ))),
        Some((name, path)) => Ok((name.to_string(), path)),
        None => Err(AdminError::invalid(format!(
            "LOCATION '{url}' is not under any registered location (SHOW LOCATIONS lists \
             them; CREATE LOCATION registers one)"
        ))),
    }
}

/// Users who may assume a role holding `ADMINISTER`, in `content`.
fn administrators(content: &CatalogFile) -> BTreeSet<String> {
    let admin_roles: BTreeSet<&str> = content
        .grant
        .iter()
        .filter(|g| {
            g.privileges
                .iter()
                .any(|p| Privilege::parse(p) == Some(Privilege::Administer))
        })
        .map(|g| g.role.as_str())
        .collect();
    let roles = content.role.iter().map(|r| r.name.as_str());
    let admin_roles: BTreeSet<&str> = roles.filter(|r| admin_roles.contains(r)).collect();
    let groups: BTreeMap<&str, &GroupEntry> =
        content.group.iter().map(|g| (g.name.as_str(), g)).collect();
    content
        .user
        .iter()
        .filter(|user| {
            let direct = user.may_assume.iter().map(String::as_str);
            let through_groups = user
                .groups
                .iter()
                .filter_map(|g| groups.get(g.as_str()))
                .flat_map(|g| g.may_assume.iter().map(String::as_str));
            direct
                .chain(through_groups)
                .any(|r| admin_roles.contains(r))
        })
        .map(|user| user.name.clone())
        .collect()
}

/// Refuses a change that leaves no administrator where there was one.
fn keep_an_administrator(before: &CatalogFile, after: &CatalogFile) -> Result<(), AdminError> {
    if !administrators(before).is_empty() && administrators(after).is_empty() {
        return Err(AdminError::PermissionDenied(
            "the change would leave no administrator (no user who may assume a role holding \
             ADMINISTER): grant another user an administrating role first"
                .into(),
        ));
    }
    Ok(())
}
