//! Tag-driven policy: grants on tag expressions, tag masks and tag row
//! filters, alone and combined with per-table grants. Table tests of each
//! rule, then a property test comparing the resolver with a reference model
//! written from the definition in `access.rs` (and `docs/tags.md`).

use std::collections::{BTreeMap, BTreeSet};

use lakegate_policy::{
    CellValue, ColumnMask, ColumnSelection, Grant, PolicySet, Privilege, Resource, Role, RowFilter,
    TableName, TagDefinition, TagExpr, TagMask, TagPolicy, TagRowFilter, Tagging, Tags,
};
use proptest::prelude::*;

const COLUMNS: [&str; 4] = ["c0", "c1", "c2", "c3"];

fn table() -> TableName {
    TableName::new("shop", "orders")
}

fn columns() -> Vec<String> {
    COLUMNS.iter().map(|c| c.to_string()).collect()
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn definitions() -> BTreeMap<String, TagDefinition> {
    [("a", ["x", "y"]), ("b", ["x", "y"])]
        .into_iter()
        .map(|(key, values)| {
            let definition = TagDefinition {
                key: key.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            };
            (key.to_string(), definition)
        })
        .collect()
}

fn expr(text: &str) -> TagExpr {
    text.parse().unwrap()
}

fn tagged_grant(name: &str, text: &str) -> Grant {
    Grant {
        name: name.into(),
        role: "r".into(),
        resource: Resource::Tagged(expr(text)),
        privileges: vec![Privilege::Select],
        grantable: false,
        columns: ColumnSelection::All,
        row_filter: None,
        masks: BTreeMap::new(),
    }
}

fn table_grant(name: &str) -> Grant {
    Grant {
        resource: Resource::Table(table()),
        ..tagged_grant(name, "a IS NULL")
    }
}

fn policy(grants: Vec<Grant>, tags: TagPolicy) -> PolicySet {
    let role = Role {
        name: "r".into(),
        description: String::new(),
    };
    PolicySet::try_new_tagged([role], [], [], grants, tags).expect("a consistent policy")
}

/// `orders` tagged a = x, its column c1 tagged a = y and c2 tagged b = x.
fn tagging() -> Tagging {
    let mut tagging = Tagging::default();
    tagging.tables.insert(table(), tags(&[("a", "x")]));
    let columns = tagging.columns.entry(table()).or_default();
    columns.insert("c1".into(), tags(&[("a", "y")]));
    columns.insert("c2".into(), tags(&[("b", "x")]));
    tagging
}

fn tag_policy() -> TagPolicy {
    TagPolicy {
        definitions: definitions(),
        tagging: tagging(),
        ..TagPolicy::default()
    }
}

fn visible(policy: &PolicySet) -> Option<Vec<String>> {
    policy
        .effective_access("r", &table(), &columns())
        .map(|access| access.columns.into_iter().map(|c| c.name).collect())
}

#[test]
fn a_tagged_grant_exposes_the_columns_whose_tags_match() {
    let cases: [(&str, Option<&[&str]>); 5] = [
        // c1 overrides a = x with a = y; the others inherit a = x.
        ("a = 'x'", Some(&["c0", "c2", "c3"])),
        ("a = 'y'", Some(&["c1"])),
        ("a = 'x' AND NOT b = 'x'", Some(&["c0", "c3"])),
        ("b IS NULL OR a = 'y'", Some(&["c0", "c1", "c3"])),
        // No column matches: the table is not covered at all.
        ("b = 'y'", None),
    ];
    for (text, expected) in cases {
        let policy = policy(vec![tagged_grant("g", text)], tag_policy());
        let expected = expected.map(|cols| cols.iter().map(|c| c.to_string()).collect());
        assert_eq!(visible(&policy), expected, "{text}");
        assert_eq!(
            policy.may_describe("r", &table(), &columns()),
            expected.is_some(),
            "{text}"
        );
    }
}

#[test]
fn nested_fields_inherit_the_tags_of_the_structs_holding_them() {
    // Struct `s` tagged a = y, its field `s.f` tagged b = x; `s.g.h`
    // inherits a = y from `s`; `t` inherits the table's a = x.
    let mut tags_of = TagPolicy {
        definitions: definitions(),
        ..TagPolicy::default()
    };
    tags_of.tagging.tables.insert(table(), tags(&[("a", "x")]));
    let own = tags_of.tagging.columns.entry(table()).or_default();
    own.insert("s".into(), tags(&[("a", "y")]));
    own.insert("s.f".into(), tags(&[("b", "x")]));
    let leaves: Vec<String> = ["s.f", "s.g.h", "t"].map(String::from).to_vec();
    let visible = |text: &str| {
        policy(vec![tagged_grant("g", text)], tags_of.clone())
            .effective_access("r", &table(), &leaves)
            .map(|access| {
                access
                    .columns
                    .into_iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
            })
    };
    assert_eq!(visible("a = 'y'").unwrap(), ["s.f", "s.g.h"]);
    assert_eq!(visible("a = 'y' AND b = 'x'").unwrap(), ["s.f"]);
    assert_eq!(visible("a = 'x'").unwrap(), ["t"]);
    assert_eq!(
        tags_of
            .tagging
            .column_tags(&table(), "s.f", &leaves, &tags(&[("a", "x")])),
        tags(&[("a", "y"), ("b", "x")])
    );
}

#[test]
fn tagging_a_table_or_column_changes_access_at_once() {
    let untagged = TagPolicy {
        definitions: definitions(),
        ..TagPolicy::default()
    };
    let grants = vec![tagged_grant("g", "a = 'x'")];
    assert_eq!(visible(&policy(grants.clone(), untagged.clone())), None);
    let mut database_tagged = untagged;
    database_tagged
        .tagging
        .databases
        .insert("shop".into(), tags(&[("a", "x")]));
    assert_eq!(
        visible(&policy(grants, database_tagged)).map(|c| c.len()),
        Some(4),
        "a table carries its database's tags"
    );
}

#[test]
fn a_tag_mask_wins_over_no_mask_and_a_grant_mask_stays() {
    let mut table_grant = table_grant("g");
    table_grant
        .masks
        .insert("c3".into(), ColumnMask::builtin("redact").unwrap());
    let mut tags = tag_policy();
    tags.masks.push(TagMask {
        name: "hash_a".into(),
        role: "r".into(),
        tagged: expr("a = 'x'"),
        mask: ColumnMask::builtin("hash").unwrap(),
    });
    let policy = policy(vec![table_grant], tags);
    let access = policy.effective_access("r", &table(), &columns()).unwrap();
    let rule = |column: &str| access.column(column).unwrap().rule_text(&access.row_filter);
    assert_eq!(rule("c0"), "masked: hash");
    assert_eq!(rule("c1"), "visible", "c1 is tagged a = y");
    assert_eq!(rule("c3"), "masked: redact", "the grant's own mask stays");
    assert!(access.grants.contains(&"hash_a".to_string()));
    assert!(!access.is_unrestricted(&columns()));
}

#[test]
fn a_tag_row_filter_restricts_and_refuses_a_table_without_its_columns() {
    let grants = vec![table_grant("g")];
    let mut tags = tag_policy();
    tags.row_filters
        .push(TagRowFilter::new("eu", "r", expr("a = 'x'"), "c0 = 'EU'").unwrap());
    let filtered = policy(grants.clone(), tags.clone());
    let access = filtered
        .effective_access("r", &table(), &columns())
        .unwrap();
    assert_eq!(access.row_filter, RowFilter::AllRows);
    assert_eq!(access.restrictions.len(), 1);
    assert!(access.filters_rows());
    // The same filter on a table lacking `c0` refuses the table.
    let lacking = ["c1".to_string(), "c2".into()];
    assert!(filtered.effective_access("r", &table(), &lacking).is_none());
    assert!(!filtered.may_describe("r", &table(), &lacking));
    // A filter whose tags do not match the table does nothing.
    tags.row_filters[0].tagged = expr("a = 'y'");
    let other = policy(grants, tags);
    assert!(other.effective_access("r", &table(), &lacking).is_some());
}

#[test]
fn mistakes_in_tag_policies_are_refused_by_name() {
    let role = Role {
        name: "r".into(),
        description: String::new(),
    };
    let mut shaped = tagged_grant("shaped", "a = 'x'");
    shaped.row_filter = Some("c0 = 1".into());
    let mut tags = tag_policy();
    tags.tagging
        .tables
        .insert(TableName::new("shop", "t"), tags_of("a", "z"));
    tags.masks.push(TagMask {
        name: "typo".into(),
        role: "r".into(),
        tagged: expr("pii = 'email'"),
        mask: ColumnMask::builtin("hash").unwrap(),
    });
    tags.row_filters
        .push(TagRowFilter::new("shaped", "nobody", expr("a = 'x'"), "c0 = 1").unwrap());
    let errors = PolicySet::try_new_tagged(
        [role],
        [],
        [],
        [shaped, tagged_grant("unknown_value", "b = 'z'")],
        tags,
    )
    .unwrap_err()
    .errors
    .into_iter()
    .map(|e| e.to_string())
    .collect::<Vec<_>>();
    let expected = [
        "grant 'shaped': a grant on a tag expression takes no column list",
        "grant 'unknown_value': tag 'b' has no value 'z'",
        "table 'shop.t': tag 'a' has no value 'z'",
        "tag mask 'typo': unknown tag 'pii'",
        "tag row filter 'shaped': declared twice",
    ];
    for wanted in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(wanted)),
            "{wanted} in {errors:#?}"
        );
    }
}

#[test]
fn assign_is_a_privilege_on_one_tag_key() {
    let mut steward = tagged_grant("steward_pii", "a IS NULL");
    steward.resource = Resource::Tag("a".into());
    steward.privileges = vec![Privilege::Assign];
    let policy = policy(vec![steward.clone()], tag_policy());
    assert!(policy.may_assign("r", "a", false));
    assert!(!policy.may_assign("r", "a", true), "not with grant option");
    assert!(!policy.may_assign("r", "b", false));
    assert!(policy.effective_access("r", &table(), &columns()).is_none());

    let role = || Role {
        name: "r".into(),
        description: String::new(),
    };
    let mut unknown = steward.clone();
    unknown.name = "unknown".into();
    unknown.resource = Resource::Tag("pii".into());
    let mut select_on_tag = steward.clone();
    select_on_tag.name = "select_on_tag".into();
    select_on_tag.privileges = vec![Privilege::Select];
    let mut assign_on_table = table_grant("assign_on_table");
    assign_on_table.privileges = vec![Privilege::Assign];
    let errors = PolicySet::try_new_tagged(
        [role()],
        [],
        [],
        [unknown, select_on_tag, assign_on_table],
        tag_policy(),
    )
    .unwrap_err()
    .errors
    .into_iter()
    .map(|e| e.to_string())
    .collect::<Vec<_>>();
    assert_eq!(
        errors,
        [
            "grant 'unknown': unknown tag 'pii'",
            "grant 'select_on_tag': a grant on a tag key confers assign and nothing else",
            "grant 'assign_on_table': assign is granted on a tag key ('tag:key'), not on shop.orders",
        ]
    );
    assert_eq!(
        Resource::parse("tag:pii"),
        Some(Resource::Tag("pii".into()))
    );
    assert_eq!(Resource::Tag("pii".into()).to_string(), "tag:pii");
}

fn tags_of(key: &str, value: &str) -> Tags {
    tags(&[(key, value)])
}

// ---------------------------------------------------------------------------
// Property test: tag grants, tag masks and tag row filters with per-table
// grants, against a reference model written from the definition.
// ---------------------------------------------------------------------------

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
