//! Effective access: what one role may see of one table, resolved from its grants.
//!
//! Lake Formation semantics, for the SELECT grants `g1..gn` a role holds on a table:
//!
//! * a row is visible when any grant admits it (the union of the row filters);
//! * a column is visible when any grant exposes it;
//! * a cell (row r, column c) shows the value of the first grant that admits r and
//!   exposes c, trying grants that show c unmasked before those that mask it (the
//!   most revealing admitting grant wins); when no grant admitting r exposes c,
//!   the cell is NULL (cell-level security).
//!
//! Tags extend the same rule (see `docs/tags.md`):
//!
//! * a grant on `TAGGED <expr>` acts, on each table, as a grant of exactly
//!   the columns whose effective tags match (and covers the table when one
//!   does), so it joins the unions above like any grant;
//! * a tag mask matching a column masks every branch that would show the
//!   column raw (a mask from a tag wins over no mask; a grant's own mask
//!   stays);
//! * a tag row filter matching a table restricts every visible row on top
//!   of the union (rows = union of grant filters AND every tag filter); a
//!   matching table lacking a column the filter reads is refused.
//!
//! The engine turns [`EffectiveAccess`] into `WHERE <row filter> AND
//! <restrictions>` and one `CASE WHEN <filter_i> THEN <value_i> ... ELSE
//! NULL END` per column; when a column has one unconditional branch it is
//! just the (masked) column.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{
    ColumnMask, ColumnSelection, Grant, Privilege, Resource, TableName, governing_paths,
    nearest_entry, path_reaches,
};
use crate::tag_policy::{TagMask, TagRowFilter};
use crate::tags::Tags;

/// A grant's row filter, named after the grant it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PolicyPredicate {
    /// The grant the predicate belongs to.
    pub grant: String,
    /// SQL boolean expression over the table's stored columns.
    pub sql: String,
}

/// The rows a role may see: the union of its grants' filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RowFilter {
    /// Every row (some grant has no filter).
    AllRows,
    /// Rows for which any of these predicates is true.
    AnyOf(Vec<PolicyPredicate>),
}

/// What a cell shows when its branch applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CellValue {
    /// The stored value.
    Raw,
    /// The stored value through a mask.
    Masked(ColumnMask),
}

/// One branch of a cell rule: when `when` holds (always, if `None`), show `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellBranch {
    /// The admitting grant's predicate; `None` for a grant admitting every row.
    pub when: Option<PolicyPredicate>,
    /// What the cell shows.
    pub value: CellValue,
}

/// A column the role may see, with the rule computing its cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisibleColumn {
    /// The column's name in the table.
    pub name: String,
    /// Tried in order; the first whose `when` holds gives the value; none: NULL.
    pub branches: Vec<CellBranch>,
}

impl VisibleColumn {
    /// The single value rule when every visible row shows the column the same
    /// way (the common case: one grant, or grants agreeing on this column).
    pub fn uniform_value(&self, row_filter: &RowFilter) -> Option<&CellValue> {
        let first = self.branches.first()?;
        if first.when.is_none() {
            return Some(&first.value);
        }
        // Every branch has the same value and, together, the branches cover
        // every visible row (one of them is unconditional, or they are
        // exactly the row filter's grants): then the CASE adds nothing.
        let same_value = self.branches.iter().all(|b| b.value == first.value);
        let unconditional = self.branches.iter().any(|b| b.when.is_none());
        let covers_all = unconditional
            || match row_filter {
                RowFilter::AllRows => false,
                RowFilter::AnyOf(predicates) => {
                    predicates.len() == self.branches.len()
                        && predicates
                            .iter()
                            .all(|p| self.branches.iter().any(|b| b.when.as_ref() == Some(p)))
                }
            };
        (same_value && covers_all).then_some(&first.value)
    }

    /// How the column's cells are computed, in words: `visible`,
    /// `masked: hash`, or each cell-level branch (`raw where grant g1; else
    /// hash`).
    pub fn rule_text(&self, row_filter: &RowFilter) -> String {
        match self.uniform_value(row_filter) {
            Some(CellValue::Raw) => "visible".to_string(),
            Some(CellValue::Masked(mask)) => format!("masked: {}", mask.name),
            None => format!(
                "cell-level: {}",
                self.branches
                    .iter()
                    .map(|b| {
                        let value = match &b.value {
                            CellValue::Raw => "raw".to_string(),
                            CellValue::Masked(mask) => mask.name.clone(),
                        };
                        match &b.when {
                            Some(p) => format!("{value} where grant {}", p.grant),
                            None => value,
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; else ")
            ),
        }
    }

    /// The name to report in `lakegate.mask` metadata: the mask's name when
    /// every branch masks the same way, `cell-level` when branches differ,
    /// `None` when the column is always raw.
    pub fn mask_label(&self, row_filter: &RowFilter) -> Option<String> {
        match self.uniform_value(row_filter) {
            Some(CellValue::Raw) => None,
            Some(CellValue::Masked(mask)) => Some(mask.name.clone()),
            None => {
                let all_raw = self.branches.iter().all(|b| b.value == CellValue::Raw);
                if all_raw {
                    Some("cell-level".to_string())
                } else {
                    let masks: Vec<&str> = self
                        .branches
                        .iter()
                        .filter_map(|b| match &b.value {
                            CellValue::Masked(mask) => Some(mask.name.as_str()),
                            CellValue::Raw => None,
                        })
                        .collect();
                    if masks.len() == self.branches.len() && masks.windows(2).all(|w| w[0] == w[1])
                    {
                        Some(format!("{} (cell-level)", masks[0]))
                    } else {
                        Some("cell-level".to_string())
                    }
                }
            }
        }
    }
}

/// Everything the engine needs to secure one table for one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveAccess {
    /// The table.
    pub table: TableName,
    /// The runtime role.
    pub role: String,
    /// Whether the role may read rows (otherwise it may only describe the table).
    pub can_select: bool,
    /// Visible columns, in the table's column order.
    pub columns: Vec<VisibleColumn>,
    /// The rows the role may see.
    pub row_filter: RowFilter,
    /// Names of the grants that contributed, for audit and explanation.
    pub grants: Vec<String>,
    /// Stored columns the role does not see at all, in the table's order.
    pub hidden_columns: Vec<String>,
    /// Row filters every visible row must also satisfy (tag row filters),
    /// on top of [`EffectiveAccess::row_filter`].
    pub restrictions: Vec<PolicyPredicate>,
}

/// A table's tags and one role's tag policies, for resolving its access.
#[derive(Debug, Clone, Copy)]
pub struct TaggedTable<'a> {
    /// The table's effective tags (its database's, overridden by its own).
    pub table_tags: &'a Tags,
    /// Tags the table's columns set themselves, by column name.
    pub column_tags: Option<&'a BTreeMap<String, Tags>>,
    /// The role's tag masks, in declaration order (the first matching wins).
    pub masks: &'a [TagMask],
    /// The role's tag row filters.
    pub row_filters: &'a [TagRowFilter],
}

impl TaggedTable<'_> {
    /// Whether the effective tags of `column` (one of the table's
    /// `policy_columns`) match `expr`: per key, its own tag, else that of
    /// the nearest struct holding it that sets the key, else the table's.
    fn column_matches(
        &self,
        column: &str,
        policy_columns: &[String],
        expr: &crate::tags::TagExpr,
    ) -> bool {
        let own_tags = |path: &str| self.column_tags.and_then(|columns| columns.get(path));
        expr.matches_with(&|key| {
            governing_paths(column, policy_columns)
                .find_map(|path| own_tags(path).and_then(|tags| tags.get(key)))
                .or_else(|| self.table_tags.get(key))
                .map(String::as_str)
        })
    }

    /// `grant` as it applies to a table with these tags and `columns`: a
    /// tagged grant becomes a grant of its matching columns (`None` when
    /// none match); any other grant is itself.
    fn concrete<'g>(&self, grant: &'g Grant, columns: &[String]) -> Option<Cow<'g, Grant>> {
        let Resource::Tagged(expr) = &grant.resource else {
            return Some(Cow::Borrowed(grant));
        };
        let matching: Vec<String> = columns
            .iter()
            .filter(|column| self.column_matches(column, columns, expr))
            .cloned()
            .collect();
        if matching.is_empty() {
            return None;
        }
        Some(Cow::Owned(Grant {
            columns: ColumnSelection::Include(matching),
            ..grant.clone()
        }))
    }
}

impl EffectiveAccess {
    /// Resolves the access of `role` on `table` (whose stored columns are
    /// `table_columns`, in order) from `grants`. Returns `None` when no grant
    /// lets the role even describe the table: default deny. Grants on tag
    /// expressions cover nothing here: see [`EffectiveAccess::resolve_tagged`].
    pub fn resolve<'a>(
        role: &str,
        table: &TableName,
        table_columns: &[String],
        grants: impl IntoIterator<Item = &'a Grant>,
    ) -> Option<Self> {
        let applicable = grants
            .into_iter()
            .filter(|g| g.role == role && g.resource.covers(table))
            .filter(|g| g.confers(Privilege::Describe))
            .map(Cow::Borrowed)
            .collect();
        Self::resolve_applicable(role, table, table_columns, applicable)
    }

    /// [`EffectiveAccess::resolve`] for a table with tags: grants on tag
    /// expressions cover it by its columns' tags, and the role's tag masks
    /// and row filters apply. `None` also when a tag row filter matching
    /// the table reads a column the table lacks (refused, never served
    /// unfiltered).
    pub fn resolve_tagged<'a>(
        role: &str,
        table: &TableName,
        table_columns: &[String],
        grants: impl IntoIterator<Item = &'a Grant>,
        tags: &TaggedTable<'_>,
    ) -> Option<Self> {
        let applicable = grants
            .into_iter()
            .filter(|g| g.role == role && g.confers(Privilege::Describe))
            .filter_map(|g| match &g.resource {
                Resource::Tagged(_) => tags.concrete(g, table_columns),
                other => other.covers(table).then_some(Cow::Borrowed(g)),
            })
            .collect();
        let mut access = Self::resolve_applicable(role, table, table_columns, applicable)?;
        let table_matches = |expr: &crate::tags::TagExpr| expr.matches(tags.table_tags);
        for filter in tags.row_filters.iter().filter(|f| f.role == role) {
            if !table_matches(&filter.tagged) {
                continue;
            }
            let has = |read: &String| {
                table_columns
                    .iter()
                    .any(|c| path_reaches(read, c, table_columns))
            };
            if !filter.columns.iter().all(has) {
                return None;
            }
            access.restrictions.push(PolicyPredicate {
                grant: filter.name.clone(),
                sql: filter.sql.clone(),
            });
            access.grants.push(filter.name.clone());
        }
        for column in &mut access.columns {
            let Some(mask) = tags.masks.iter().find(|m| {
                m.role == role && tags.column_matches(&column.name, table_columns, &m.tagged)
            }) else {
                continue;
            };
            let mut masked = false;
            for branch in &mut column.branches {
                if branch.value == CellValue::Raw {
                    branch.value = CellValue::Masked(mask.mask.clone());
                    masked = true;
                }
            }
            if masked && !access.grants.contains(&mask.name) {
                access.grants.push(mask.name.clone());
            }
        }
        Some(access)
    }

    /// Resolution proper, over the grants that apply to the table (each
    /// as it applies: a tagged grant narrowed to its matching columns).
    fn resolve_applicable(
        role: &str,
        table: &TableName,
        table_columns: &[String],
        applicable: Vec<Cow<'_, Grant>>,
    ) -> Option<Self> {
        let applicable: Vec<&Grant> = applicable.iter().map(|g| g.as_ref()).collect();
        if applicable.is_empty() {
            return None;
        }
        let selecting: Vec<&Grant> = applicable
            .iter()
            .copied()
            .filter(|g| g.confers(Privilege::Select))
            .collect();
        let can_select = !selecting.is_empty();
        // A describe-only role sees the columns its grants expose, and no rows.
        let shaping = if can_select { &selecting } else { &applicable };

        let predicate_of = |g: &Grant| {
            g.row_filter.as_ref().map(|sql| PolicyPredicate {
                grant: g.name.clone(),
                sql: sql.clone(),
            })
        };
        let row_filter = if shaping.iter().any(|g| g.row_filter.is_none()) {
            RowFilter::AllRows
        } else {
            RowFilter::AnyOf(shaping.iter().filter_map(|g| predicate_of(g)).collect())
        };

        let columns: Vec<VisibleColumn> = table_columns
            .iter()
            .filter_map(|column| {
                let mut exposing: Vec<(&Grant, CellValue)> = shaping
                    .iter()
                    .filter(|g| g.columns.admits(column, table_columns))
                    .map(|g| {
                        let value = match nearest_entry(&g.masks, column, table_columns) {
                            Some((_, mask)) => CellValue::Masked(mask.clone()),
                            None => CellValue::Raw,
                        };
                        (*g, value)
                    })
                    .collect();
                if exposing.is_empty() {
                    return None;
                }
                // Most revealing first; the sort is stable, so declaration
                // order breaks ties between masks.
                exposing.sort_by_key(|(_, value)| !matches!(value, CellValue::Raw));
                let mut branches = Vec::new();
                for (grant, value) in exposing {
                    let when = predicate_of(grant);
                    let unconditional = when.is_none();
                    branches.push(CellBranch { when, value });
                    if unconditional {
                        break; // later branches can never be reached
                    }
                }
                Some(VisibleColumn {
                    name: column.clone(),
                    branches,
                })
            })
            .collect();

        let hidden_columns = table_columns
            .iter()
            .filter(|stored| !columns.iter().any(|c| &c.name == *stored))
            .cloned()
            .collect();
        Some(Self {
            table: table.clone(),
            role: role.to_string(),
            can_select,
            columns,
            row_filter,
            grants: shaping.iter().map(|g| g.name.clone()).collect(),
            hidden_columns,
            restrictions: Vec::new(),
        })
    }

    /// The visible column named `name`, if any.
    pub fn column(&self, name: &str) -> Option<&VisibleColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether the role's policy hides some of the table's rows.
    pub fn filters_rows(&self) -> bool {
        self.row_filter != RowFilter::AllRows || !self.restrictions.is_empty()
    }

    /// Whether the role sees the table exactly as stored: every column, raw,
    /// every row. The engine can then skip the barrier's work.
    pub fn is_unrestricted(&self, table_columns: &[String]) -> bool {
        self.can_select
            && self.row_filter == RowFilter::AllRows
            && self.restrictions.is_empty()
            && self.columns.len() == table_columns.len()
            && self
                .columns
                .iter()
                .all(|c| c.uniform_value(&self.row_filter) == Some(&CellValue::Raw))
    }
}
