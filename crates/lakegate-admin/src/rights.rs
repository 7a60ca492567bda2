//! The privilege model (see `changes.rs` and docs/administration.md): what
//! the caller's role may do in the policy served now, how a data grant is
//! narrowed to what its grantor holds with grant option, and the rule that
//! a catalog keeps an administrator.

use std::collections::{BTreeMap, BTreeSet};

use lakegate_catalog::{Catalog, CatalogFile, CustomMaskEntry, GrantEntry, GroupEntry, MaskEntry};
use lakegate_policy::{
    ColumnMask, ColumnSelection, Grant, MaskKind, Privilege, Resource, nearest_entry, path_reaches,
};

use crate::changes::{Actor, present};
use crate::error::AdminError;
use crate::statement::{Columns, DataGrant, MaskSpec, Target};

/// The caller's rights, in the policy served now.
pub(crate) struct Rights<'a> {
    pub(crate) actor: &'a Actor,
    pub(crate) served: &'a Catalog,
}

impl Rights<'_> {
    /// Refused unless the caller's role holds `ADMINISTER`.
    pub(crate) fn administer(&self) -> Result<(), AdminError> {
        if self.served.policy.may_administer(&self.actor.role, false) {
            Ok(())
        } else {
            Err(self.missing("ADMINISTER on the catalog"))
        }
    }

    pub(crate) fn missing(&self, privilege: &str) -> AdminError {
        AdminError::PermissionDenied(format!(
            "role {} lacks the privilege {privilege}",
            self.actor.role
        ))
    }

    /// Refused unless the caller may revoke grants on `target`.
    pub(crate) fn may_revoke(&self, target: &Target) -> Result<(), AdminError> {
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
    pub(crate) fn data_grant(
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
            tagged: grant.target.tagged(),
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
        let assign = grant.privileges.contains(&Privilege::Assign);
        match (&grant.target, assign) {
            (Target::Tag(key), true) if grant.privileges.len() == 1 => {
                // A steward passes on a key it may assign with grant option.
                let role = &self.actor.role;
                let policy = &self.served.policy;
                if !policy.may_administer(role, false) && !policy.may_assign(role, key, true) {
                    return Err(self.missing(&format!(
                        "ADMINISTER, or ASSIGN ON TAG {key} with grant option"
                    )));
                }
                return Ok(entry);
            }
            (Target::Tag(_), _) => {
                return Err(AdminError::invalid("ASSIGN is granted alone, ON TAG key"));
            }
            (_, true) => {
                return Err(AdminError::invalid(format!(
                    "ASSIGN is granted on a tag key (ON TAG key), not on {}",
                    grant.target
                )));
            }
            _ => {}
        }
        if let Target::Tagged(_) = grant.target {
            // Tags reach tables present and future: granting on them is the
            // lake administrator's.
            if !self.served.policy.may_administer(&self.actor.role, false) {
                return Err(self.missing("ADMINISTER, which grants on tag expressions need"));
            }
            return Ok(entry);
        }
        if grant.privileges.iter().any(|p| p.is_write())
            && self.served.policy.may_administer(&self.actor.role, false)
        {
            // Write privileges are the lake administrator's to grant, held
            // or not; what the grant also lets read, it must hold.
            let reads: Vec<Privilege> = grant
                .privileges
                .iter()
                .copied()
                .filter(|p| !p.is_write())
                .collect();
            if !reads.is_empty() {
                let read_part = DataGrant {
                    privileges: reads,
                    ..grant.clone()
                };
                self.narrow(&read_part, &mut entry)?;
            }
            return Ok(entry);
        }
        self.narrow(grant, &mut entry)?;
        Ok(entry)
    }

    /// Narrows `entry` to one of the caller's grants with grant option that
    /// covers it, or refuses.
    pub(crate) fn narrow(
        &self,
        grant: &DataGrant,
        entry: &mut GrantEntry,
    ) -> Result<(), AdminError> {
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
            Some(table) => table.policy_columns(),
            None => {
                return Err(AdminError::invalid(format!(
                    "table {name} is not served yet: retry once it is"
                )));
            }
        };
        let wanted = selection(entry);
        let exposed: Vec<&String> = columns
            .iter()
            .filter(|c| wanted.admits(c, &columns))
            .collect();
        let mut refusal = None;
        for grantor in candidates {
            let beyond: Vec<&str> = exposed
                .iter()
                .filter(|c| !grantor.columns.admits(c, &columns))
                .map(|c| c.as_str())
                .collect();
            if !beyond.is_empty() {
                refusal = Some(self.missing(&format!(
                    "SELECT with grant option on columns {} of {name}",
                    beyond.join(", ")
                )));
                continue;
            }
            // The grantor's masks stay on every column (or nested field) it
            // masks: carried over where the new grant names none, and no
            // mask of the new grant may take their place.
            let mut masks = entry.masks.clone();
            for (column, mask) in &grantor.masks {
                let reaches_exposed = exposed.iter().any(|c| path_reaches(column, c, &columns));
                if reaches_exposed && !masks.contains_key(column) {
                    masks.insert(column.clone(), mask_entry_of(mask));
                }
            }
            let remasked = exposed.iter().find(|c| {
                nearest_entry(&grantor.masks, c, &columns).is_some_and(|(_, held)| {
                    !nearest_entry(&masks, c, &columns)
                        .is_some_and(|(_, given)| same_mask(given, held))
                })
            });
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
pub(crate) fn covers(holder: &Resource, wanted: &Resource) -> bool {
    match (holder, wanted) {
        // A tag key is covered by a grant on that key alone.
        (_, Resource::Tag(key)) => matches!(holder, Resource::Tag(held) if held == key),
        (Resource::AllDatabases, _) => true,
        (Resource::AllTablesIn(db), Resource::AllTablesIn(other)) => db == other,
        (Resource::AllTablesIn(_), Resource::Table(table)) => holder.covers(table),
        (Resource::Table(a), Resource::Table(b)) => a == b,
        _ => false,
    }
}

pub(crate) fn resource_of(target: &Target) -> Resource {
    match target {
        Target::Table(name) => Resource::Table(name.clone()),
        Target::Database(database) => Resource::AllTablesIn(database.clone()),
        Target::Catalog => Resource::AllDatabases,
        Target::Tagged(expr) => Resource::Tagged(expr.clone()),
        Target::Tag(key) => Resource::Tag(key.clone()),
    }
}

pub(crate) fn target_of(on: &str) -> Result<Target, AdminError> {
    Ok(match Resource::parse(on) {
        Some(Resource::Table(name)) => Target::Table(name),
        Some(Resource::AllTablesIn(database)) => Target::Database(database),
        Some(Resource::AllDatabases) => Target::Catalog,
        Some(Resource::Tag(key)) => Target::Tag(key),
        Some(Resource::Tagged(_)) | None => {
            return Err(AdminError::invalid(format!("invalid grant target '{on}'")));
        }
    })
}

/// The column selection of a grant entry.
pub(crate) fn selection(entry: &GrantEntry) -> ColumnSelection {
    match (&entry.include_columns, &entry.exclude_columns) {
        (Some(columns), _) => ColumnSelection::Include(columns.clone()),
        (None, Some(columns)) => ColumnSelection::Exclude(columns.clone()),
        (None, None) => ColumnSelection::All,
    }
}

/// Whether revoking `revoked` takes `held` away (revoking SELECT leaves
/// DESCRIBE; revoking DESCRIBE takes SELECT too, which implies it).
pub(crate) fn revokes(revoked: &[Privilege], held: Privilege) -> bool {
    revoked.contains(&held) || (held == Privilege::Select && revoked.contains(&Privilege::Describe))
}

pub(crate) fn mask_entry(column: &str, mask: &MaskSpec) -> MaskEntry {
    match mask {
        MaskSpec::Builtin(name) => MaskEntry::Builtin(name.clone()),
        MaskSpec::Expression(expression) => MaskEntry::Custom(CustomMaskEntry {
            name: format!("{column}_mask"),
            expression: expression.clone(),
        }),
    }
}

pub(crate) fn mask_entry_of(mask: &ColumnMask) -> MaskEntry {
    match &mask.kind {
        MaskKind::Custom { sql } => MaskEntry::Custom(CustomMaskEntry {
            name: mask.name.clone(),
            expression: sql.clone(),
        }),
        _ => MaskEntry::Builtin(mask.name.clone()),
    }
}

pub(crate) fn same_mask(given: &MaskEntry, held: &ColumnMask) -> bool {
    match (given, &held.kind) {
        (MaskEntry::Builtin(name), kind) => MaskKind::builtin(name).as_ref() == Some(kind),
        (MaskEntry::Custom(custom), MaskKind::Custom { sql }) => {
            custom.expression.trim() == sql.trim()
        }
        _ => false,
    }
}

/// A grant name not taken yet: `role_db_table`, then `_2`, `_3`...
pub(crate) fn fresh_grant_name(content: &CatalogFile, grant: &DataGrant) -> String {
    let base = match &grant.target {
        Target::Table(name) => format!("{}_{}_{}", grant.role, name.database, name.table),
        Target::Database(database) => format!("{}_{database}", grant.role),
        Target::Catalog => format!("{}_catalog", grant.role),
        Target::Tagged(_) => format!("{}_tagged", grant.role),
        Target::Tag(key) => format!("{}_assign_{key}", grant.role),
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

pub(crate) fn privilege_list(privileges: &[Privilege]) -> String {
    privileges
        .iter()
        .map(|p| p.name().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Users who may assume a role holding `ADMINISTER`, in `content`.
pub(crate) fn administrators(content: &CatalogFile) -> BTreeSet<String> {
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
pub(crate) fn keep_an_administrator(
    before: &CatalogFile,
    after: &CatalogFile,
) -> Result<(), AdminError> {
    if !administrators(before).is_empty() && administrators(after).is_empty() {
        return Err(AdminError::PermissionDenied(
            "the change would leave no administrator (no user who may assume a role holding \
             ADMINISTER): grant another user an administrating role first"
                .into(),
        ));
    }
    Ok(())
}
