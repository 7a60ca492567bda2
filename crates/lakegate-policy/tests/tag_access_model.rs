//! Tag-driven policy as a property: tag grants, tag masks and tag row
//! filters with per-table grants, the resolver against a reference model
//! written from the definition in `access.rs` (and `docs/tags.md`).

mod tag_support;

use std::collections::BTreeSet;

use lakegate_policy::{
    CellValue, ColumnMask, ColumnSelection, PolicySet, RowFilter, TagMask, TagPolicy, TagRowFilter,
    Tagging, Tags,
};
use proptest::prelude::*;

use tag_support::*;

const ROWS: usize = 8;

/// Tag expressions the model draws from.
const EXPRESSIONS: [&str; 6] = [
    "a = 'x'",
    "a IS NULL",
    "NOT b = 'y'",
    "a = 'x' OR b = 'y'",
    "a IN ('x', 'y') AND NOT b IS NULL",
    "b = 'x'",
];

#[derive(Debug, Clone)]
enum ModelGrant {
    /// A grant on the table: rows admitted (None: all), columns exposed,
    /// grant masks (0: hash, 1: redact).
    Table {
        rows: Option<BTreeSet<usize>>,
        exposes: [bool; 4],
        masks: [Option<u8>; 4],
    },
    /// A grant on `EXPRESSIONS[i]`.
    Tagged(usize),
}

#[derive(Debug, Clone)]
struct Model {
    table_tags: Tags,
    column_tags: [Tags; 4],
    grants: Vec<ModelGrant>,
    /// Tag masks: (expression, 0: nullify / 1: show_last_4).
    masks: Vec<(usize, u8)>,
    /// Tag row filters: (expression, rows admitted, reads a missing column).
    filters: Vec<(usize, BTreeSet<usize>, bool)>,
}

fn arbitrary_tags() -> impl Strategy<Value = Tags> {
    proptest::collection::btree_map(
        prop::sample::select(vec!["a", "b"]).prop_map(str::to_string),
        prop::sample::select(vec!["x", "y"]).prop_map(str::to_string),
        0..3,
    )
}

fn model_grant() -> impl Strategy<Value = ModelGrant> {
    let table = (
        proptest::option::weighted(0.6, proptest::collection::btree_set(0..ROWS, 0..ROWS)),
        [any::<bool>(); 4],
        [
            proptest::option::of(0u8..2),
            proptest::option::of(0u8..2),
            proptest::option::of(0u8..2),
            proptest::option::of(0u8..2),
        ],
    )
        .prop_map(|(rows, exposes, masks)| ModelGrant::Table {
            rows,
            exposes,
            masks,
        });
    prop_oneof![table, (0..EXPRESSIONS.len()).prop_map(ModelGrant::Tagged)]
}

fn model() -> impl Strategy<Value = Model> {
    (
        arbitrary_tags(),
        [
            arbitrary_tags(),
            arbitrary_tags(),
            arbitrary_tags(),
            arbitrary_tags(),
        ],
        proptest::collection::vec(model_grant(), 1..4),
        proptest::collection::vec((0..EXPRESSIONS.len(), 0u8..2), 0..3),
        proptest::collection::vec(
            (
                0..EXPRESSIONS.len(),
                proptest::collection::btree_set(0..ROWS, 0..ROWS),
                proptest::bool::weighted(0.2),
            ),
            0..3,
        ),
    )
        .prop_map(|(table_tags, column_tags, grants, masks, filters)| Model {
            table_tags,
            column_tags,
            grants,
            masks,
            filters,
        })
}

impl Model {
    fn policy(&self) -> PolicySet {
        let mut grants = Vec::new();
        for (i, grant) in self.grants.iter().enumerate() {
            let name = format!("g{i}");
            grants.push(match grant {
                ModelGrant::Tagged(e) => tagged_grant(&name, EXPRESSIONS[*e]),
                ModelGrant::Table {
                    rows,
                    exposes,
                    masks,
                } => {
                    let mut g = table_grant(&name);
                    g.row_filter = rows.as_ref().map(|_| format!("c0 = '{name}'"));
                    g.columns = ColumnSelection::Include(
                        COLUMNS
                            .iter()
                            .zip(exposes)
                            .filter(|(_, e)| **e)
                            .map(|(c, _)| c.to_string())
                            .collect(),
                    );
                    for (c, mask) in COLUMNS.iter().zip(masks) {
                        if let Some(k) = mask {
                            let mask = if *k == 0 { "hash" } else { "redact" };
                            g.masks
                                .insert(c.to_string(), ColumnMask::builtin(mask).unwrap());
                        }
                    }
                    g
                }
            });
        }
        let mut tagging = Tagging::default();
        tagging.tables.insert(table(), self.table_tags.clone());
        for (column, tags) in COLUMNS.iter().zip(&self.column_tags) {
            tagging
                .columns
                .entry(table())
                .or_default()
                .insert(column.to_string(), tags.clone());
        }
        let masks = self
            .masks
            .iter()
            .enumerate()
            .map(|(i, (e, k))| TagMask {
                name: format!("m{i}"),
                role: "r".into(),
                tagged: expr(EXPRESSIONS[*e]),
                mask: ColumnMask::builtin(if *k == 0 { "nullify" } else { "show_last_4" }).unwrap(),
            })
            .collect();
        let row_filters = self
            .filters
            .iter()
            .enumerate()
            .map(|(i, (e, _, missing))| {
                let column = if *missing { "zz" } else { "c1" };
                TagRowFilter::new(
                    format!("f{i}"),
                    "r",
                    expr(EXPRESSIONS[*e]),
                    format!("{column} = 'f{i}'"),
                )
                .unwrap()
            })
            .collect();
        policy(
            grants,
            TagPolicy {
                definitions: definitions(),
                tagging,
                masks,
                row_filters,
            },
        )
    }

    fn column_tags(&self, column: usize) -> Tags {
        let mut tags = self.table_tags.clone();
        tags.extend(self.column_tags[column].clone());
        tags
    }

    /// Which columns grant `g` exposes, by the definition.
    fn exposes(&self, grant: &ModelGrant) -> [bool; 4] {
        match grant {
            ModelGrant::Table { exposes, .. } => *exposes,
            ModelGrant::Tagged(e) => {
                std::array::from_fn(|c| expr(EXPRESSIONS[*e]).matches(&self.column_tags(c)))
            }
        }
    }

    fn admits(grant: &ModelGrant, row: usize) -> bool {
        match grant {
            ModelGrant::Table { rows, .. } => rows.as_ref().is_none_or(|r| r.contains(&row)),
            ModelGrant::Tagged(_) => true,
        }
    }

    fn grant_mask(grant: &ModelGrant, column: usize) -> Option<&'static str> {
        match grant {
            ModelGrant::Table { masks, .. } => {
                masks[column].map(|k| if k == 0 { "hash" } else { "redact" })
            }
            ModelGrant::Tagged(_) => None,
        }
    }
}

/// What the resolver says of (row, column): None for an invisible row,
/// else the cell: "raw", a mask's name, or "null".
fn resolved_cell(
    access: &lakegate_policy::EffectiveAccess,
    model: &Model,
    row: usize,
    column: &str,
) -> Option<String> {
    let passes = |grant: &str| -> bool {
        if let Some(i) = grant.strip_prefix('g') {
            return Model::admits(&model.grants[i.parse::<usize>().unwrap()], row);
        }
        let i: usize = grant[1..].parse().unwrap();
        model.filters[i].1.contains(&row)
    };
    let union = match &access.row_filter {
        RowFilter::AllRows => true,
        RowFilter::AnyOf(predicates) => predicates.iter().any(|p| passes(&p.grant)),
    };
    if !union || !access.restrictions.iter().all(|p| passes(&p.grant)) {
        return None;
    }
    let column = access.column(column)?;
    let cell = column
        .branches
        .iter()
        .find(|b| b.when.as_ref().is_none_or(|p| passes(&p.grant)))
        .map(|b| match &b.value {
            CellValue::Raw => "raw".to_string(),
            CellValue::Masked(mask) => mask.name.clone(),
        })
        .unwrap_or_else(|| "null".to_string());
    Some(cell)
}

proptest! {
    #[test]
    fn tag_policies_match_the_definition(model in model()) {
        let policy = model.policy();
        let access = policy.effective_access("r", &table(), &columns());

        // Covering grants: a table grant always; a tagged grant when one
        // of its columns matches.
        let covering: Vec<&ModelGrant> = model
            .grants
            .iter()
            .filter(|g| matches!(g, ModelGrant::Table { .. }) || model.exposes(g).iter().any(|e| *e))
            .collect();
        let matching_filters: Vec<&(usize, BTreeSet<usize>, bool)> = model
            .filters
            .iter()
            .filter(|(e, _, _)| expr(EXPRESSIONS[*e]).matches(&model.table_tags))
            .collect();
        let refused = covering.is_empty() || matching_filters.iter().any(|(_, _, missing)| *missing);
        prop_assert_eq!(access.is_none(), refused);
        prop_assert_eq!(policy.may_describe("r", &table(), &columns()), !refused);
        let Some(access) = access else { return Ok(()); };

        for (c, name) in COLUMNS.iter().enumerate() {
            let exposed = covering.iter().any(|g| model.exposes(g)[c]);
            prop_assert_eq!(access.column(name).is_some(), exposed, "column {}", c);
        }
        for row in 0..ROWS {
            let visible = covering.iter().any(|g| Model::admits(g, row))
                && matching_filters.iter().all(|(_, rows, _)| rows.contains(&row));
            for (c, name) in COLUMNS.iter().enumerate() {
                if !covering.iter().any(|g| model.exposes(g)[c]) {
                    continue;
                }
                let got = resolved_cell(&access, &model, row, name);
                if !visible {
                    prop_assert_eq!(got, None, "row {} column {}", row, c);
                    continue;
                }
                // Definition: among admitting grants exposing the column,
                // raw if one shows it unmasked, else the first one's mask,
                // else NULL; then a raw value takes the first matching tag
                // mask.
                let admitting: Vec<&&ModelGrant> = covering
                    .iter()
                    .filter(|g| Model::admits(g, row) && model.exposes(g)[c])
                    .collect();
                let mut expected = if admitting.iter().any(|g| Model::grant_mask(g, c).is_none()) {
                    "raw".to_string()
                } else if let Some(g) = admitting.first() {
                    Model::grant_mask(g, c).unwrap().to_string()
                } else {
                    "null".to_string()
                };
                if expected == "raw"
                    && let Some((_, k)) = model
                        .masks
                        .iter()
                        .find(|(e, _)| expr(EXPRESSIONS[*e]).matches(&model.column_tags(c)))
                {
                    expected = if *k == 0 { "nullify" } else { "show_last_4" }.to_string();
                }
                prop_assert_eq!(got, Some(expected), "row {} column {}", row, c);
            }
        }
    }
}
