//! Table-driven tests and property tests of effective access: row union,
//! column union and cell-level semantics, role assumption, default deny.

use std::collections::{BTreeMap, BTreeSet};

use lakegate_policy::{
    CellValue, ColumnMask, ColumnSelection, EffectiveAccess, Grant, Group, PolicySet, Principal,
    Privilege, Resource, Role, RoleError, RowFilter, TableName, User,
};
use proptest::prelude::*;

fn grant(name: &str, role: &str, resource: &str) -> Grant {
    Grant {
        name: name.into(),
        role: role.into(),
        resource: Resource::parse(resource).unwrap(),
        privileges: vec![Privilege::Select],
        grantable: false,
        columns: ColumnSelection::All,
        row_filter: None,
        masks: BTreeMap::new(),
    }
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn orders() -> TableName {
    TableName::new("shop", "orders")
}

#[test]
fn default_deny_without_grant() {
    let grants = [grant("g", "r", "shop.customers")];
    assert!(EffectiveAccess::resolve("r", &orders(), &columns(&["a"]), &grants).is_none());
    assert!(EffectiveAccess::resolve("other", &orders(), &columns(&["a"]), &grants).is_none());
}

#[test]
fn resource_patterns_cover_tables() {
    let cases = [
        ("*", "shop.orders", true),
        ("shop.*", "shop.orders", true),
        ("shop.*", "hr.people", false),
        ("shop.orders", "shop.orders", true),
        ("shop.orders", "shop.order", false),
    ];
    for (pattern, table, expected) in cases {
        let (db, t) = table.split_once('.').unwrap();
        assert_eq!(
            Resource::parse(pattern)
                .unwrap()
                .covers(&TableName::new(db, t)),
            expected,
            "{pattern} covers {table}"
        );
    }
    for bad in ["", "shop", "shop.", ".orders", "a.b.c", "*.orders"] {
        assert!(Resource::parse(bad).is_none(), "{bad:?} must not parse");
    }
}

#[test]
fn include_and_exclude_lists() {
    let cols = columns(&["id", "name", "email", "card"]);
    let cases: [(ColumnSelection, &[&str]); 3] = [
        (ColumnSelection::All, &["id", "name", "email", "card"]),
        (
            ColumnSelection::Include(columns(&["email", "id"])),
            &["id", "email"],
        ),
        (
            ColumnSelection::Exclude(columns(&["card", "name"])),
            &["id", "email"],
        ),
    ];
    for (selection, expected) in cases {
        let mut g = grant("g", "r", "shop.orders");
        g.columns = selection.clone();
        let access = EffectiveAccess::resolve("r", &orders(), &cols, [&g]).unwrap();
        let visible: Vec<&str> = access.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(visible, expected, "{selection:?}");
    }
}

#[test]
fn nested_fields_are_governed_by_path_and_by_the_structs_holding_them() {
    // Policy columns: a flat `id`, the leaves of struct `customer`, and a
    // flat column whose name has a dot (not beneath a column `a`).
    let cols = columns(&[
        "id",
        "customer.name",
        "customer.email",
        "customer.address.city",
        "a",
        "a.b",
    ]);
    let visible = |selection: ColumnSelection| {
        let mut g = grant("g", "r", "shop.orders");
        g.columns = selection;
        let access = EffectiveAccess::resolve("r", &orders(), &cols, [&g]).unwrap();
        access
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        visible(ColumnSelection::Include(columns(&[
            "customer.address",
            "a"
        ]))),
        ["customer.address.city", "a"]
    );
    assert_eq!(
        visible(ColumnSelection::Exclude(columns(&["customer.email", "a"]))),
        ["id", "customer.name", "customer.address.city", "a.b"]
    );
    assert_eq!(
        visible(ColumnSelection::Include(columns(&["customer"]))),
        ["customer.name", "customer.email", "customer.address.city"]
    );

    // A mask on a struct masks every field beneath it; a field's own mask
    // wins over its struct's.
    let mut g = grant("g", "r", "shop.orders");
    g.masks
        .insert("customer".into(), ColumnMask::builtin("nullify").unwrap());
    g.masks.insert(
        "customer.email".into(),
        ColumnMask::builtin("hash").unwrap(),
    );
    let access = EffectiveAccess::resolve("r", &orders(), &cols, [&g]).unwrap();
    let mask_of = |name: &str| access.column(name).unwrap().mask_label(&access.row_filter);
    assert_eq!(mask_of("customer.name").as_deref(), Some("nullify"));
    assert_eq!(mask_of("customer.address.city").as_deref(), Some("nullify"));
    assert_eq!(mask_of("customer.email").as_deref(), Some("hash"));
    assert_eq!(mask_of("id"), None);
    assert_eq!(mask_of("a.b"), None);
}

#[test]
fn describe_only_grant_sees_columns_but_cannot_select() {
    let mut g = grant("g", "r", "shop.orders");
    g.privileges = vec![Privilege::Describe];
    let access = EffectiveAccess::resolve("r", &orders(), &columns(&["a", "b"]), [&g]).unwrap();
    assert!(!access.can_select);
    assert_eq!(access.columns.len(), 2);
}

#[test]
fn row_filters_union_and_unfiltered_grant_wins() {
    let mut a = grant("a", "r", "shop.orders");
    a.row_filter = Some("region = 'EU'".into());
    let mut b = grant("b", "r", "shop.orders");
    b.row_filter = Some("region = 'US'".into());
    let access = EffectiveAccess::resolve("r", &orders(), &columns(&["region"]), [&a, &b]).unwrap();
    match &access.row_filter {
        RowFilter::AnyOf(predicates) => assert_eq!(predicates.len(), 2),
        other => panic!("expected a union, got {other:?}"),
    }
    let c = grant("c", "r", "shop.*");
    let access =
        EffectiveAccess::resolve("r", &orders(), &columns(&["region"]), [&a, &b, &c]).unwrap();
    assert_eq!(access.row_filter, RowFilter::AllRows);
}

#[test]
fn single_grant_mask_is_uniform() {
    let mut g = grant("g", "r", "shop.orders");
    g.masks
        .insert("email".into(), ColumnMask::builtin("hash").unwrap());
    g.row_filter = Some("id > 3".into());
    let access =
        EffectiveAccess::resolve("r", &orders(), &columns(&["id", "email"]), [&g]).unwrap();
    let email = access.column("email").unwrap();
    assert!(matches!(
        email.uniform_value(&access.row_filter),
        Some(CellValue::Masked(m)) if m.name == "hash"
    ));
    assert_eq!(
        email.mask_label(&access.row_filter).as_deref(),
        Some("hash")
    );
    assert_eq!(
        access.column("id").unwrap().mask_label(&access.row_filter),
        None
    );
}

#[test]
fn a_column_raw_in_every_grant_showing_it_is_plain_raw() {
    // One grant shows a team's rows, another every row's id: `id` is raw in
    // both, so it is raw, not cell-level, though the grants' rows differ.
    let mut team = grant("team", "r", "shop.orders");
    team.columns = ColumnSelection::Include(columns(&["id", "name"]));
    team.row_filter = Some("manager_id = 7".into());
    let mut ids = grant("ids", "r", "shop.orders");
    ids.columns = ColumnSelection::Include(columns(&["id"]));
    let access =
        EffectiveAccess::resolve("r", &orders(), &columns(&["id", "name"]), [&team, &ids]).unwrap();
    let id = access.column("id").unwrap();
    assert_eq!(id.uniform_value(&access.row_filter), Some(&CellValue::Raw));
    assert_eq!(id.mask_label(&access.row_filter), None);
    // `name` is shown by the team's grant only: NULL on other rows.
    let name = access.column("name").unwrap();
    assert_eq!(name.uniform_value(&access.row_filter), None);
    assert_eq!(
        name.mask_label(&access.row_filter).as_deref(),
        Some("cell-level")
    );
}

#[test]
fn unrestricted_access_is_detected() {
    let cols = columns(&["a", "b"]);
    let g = grant("g", "r", "*");
    let access = EffectiveAccess::resolve("r", &orders(), &cols, [&g]).unwrap();
    assert!(access.is_unrestricted(&cols));
    let mut h = grant("h", "r", "*");
    h.columns = ColumnSelection::Exclude(columns(&["b"]));
    let access = EffectiveAccess::resolve("r", &orders(), &cols, [&h]).unwrap();
    assert!(!access.is_unrestricted(&cols));
}

fn demo_policy() -> PolicySet {
    let role = |name: &str| Role {
        name: name.into(),
        description: String::new(),
    };
    PolicySet::try_new(
        [role("sales"), role("electronics"), role("marketing")],
        [
            User {
                name: "tina".into(),
                groups: vec!["retail".into()],
                may_assume: vec!["sales".into()],
                default_role: Some("sales".into()),
            },
            User {
                name: "nobody".into(),
                groups: vec![],
                may_assume: vec![],
                default_role: None,
            },
        ],
        [Group {
            name: "retail".into(),
            may_assume: vec!["electronics".into()],
        }],
        [],
    )
    .expect("a consistent policy")
}

#[test]
fn identity_provider_groups_open_their_roles_and_nothing_else() {
    let policy = demo_policy();
    // A catalog user keeps its own roles and gains its provider groups'.
    let nobody_in_retail = Principal {
        user: "nobody".into(),
        provider_groups: vec!["retail".into(), "no_such_group".into()],
        provider_only: false,
    };
    assert_eq!(
        policy.assumable_roles_of(&nobody_in_retail),
        BTreeSet::from(["electronics".to_string()])
    );
    // A user the catalog does not know: refused, unless the provider alone
    // vouches for it; then its groups' roles only, the only one by default.
    let stranger = Principal {
        user: "zoe".into(),
        provider_groups: vec!["retail".into()],
        provider_only: false,
    };
    assert!(matches!(
        policy.runtime_role(&stranger, Some("electronics")),
        Err(RoleError::UnknownUser { .. })
    ));
    let vouched = Principal {
        provider_only: true,
        ..stranger
    };
    assert_eq!(
        policy.runtime_role(&vouched, None).unwrap().role,
        "electronics"
    );
    assert!(matches!(
        policy.runtime_role(&vouched, Some("sales")),
        Err(RoleError::MayNotAssume { .. })
    ));
    let no_groups = Principal {
        user: "zoe".into(),
        provider_groups: vec![],
        provider_only: true,
    };
    assert!(policy.assumable_roles_of(&no_groups).is_empty());
    assert!(matches!(
        policy.runtime_role(&no_groups, None),
        Err(RoleError::NoDefaultRole { .. })
    ));
    // A provider-only principal never takes over a catalog user's entry:
    // the name is the catalog user's, with its own roles.
    let named_like_tina = Principal {
        user: "tina".into(),
        provider_groups: vec![],
        provider_only: true,
    };
    assert_eq!(
        policy.runtime_role(&named_like_tina, None).unwrap().role,
        "sales"
    );
}

#[test]
fn runtime_role_assumption() {
    let policy = demo_policy();
    let cases: [(&str, Option<&str>, Result<&str, RoleError>); 5] = [
        ("tina", None, Ok("sales")),
        ("tina", Some("electronics"), Ok("electronics")),
        (
            "tina",
            Some("marketing"),
            Err(RoleError::MayNotAssume {
                user: "tina".into(),
                role: "marketing".into(),
            }),
        ),
        (
            "tina",
            Some("no_such_role"),
            Err(RoleError::MayNotAssume {
                user: "tina".into(),
                role: "no_such_role".into(),
            }),
        ),
        (
            "nobody",
            None,
            Err(RoleError::NoDefaultRole {
                user: "nobody".into(),
            }),
        ),
    ];
    for (user, requested, expected) in cases {
        let got = policy
            .runtime_role(&Principal::local(user), requested)
            .map(|r| r.role);
        assert_eq!(got, expected.map(str::to_string), "{user} {requested:?}");
    }
    assert_eq!(
        policy.assumable_roles("tina"),
        BTreeSet::from(["electronics".to_string(), "sales".to_string()])
    );
}

// ---------------------------------------------------------------------------
// Property tests: a reference model of the union and cell semantics, written
// directly from the definition, compared with the resolver's rules evaluated
// over a small universe of rows.
// ---------------------------------------------------------------------------

const ROWS: usize = 12;
const COLUMNS: [&str; 4] = ["c0", "c1", "c2", "c3"];

/// A generated grant: which rows its filter admits (None: all), which columns
/// it exposes, which columns it masks (with mask 0 or 1).
#[derive(Debug, Clone)]
struct ModelGrant {
    rows: Option<BTreeSet<usize>>,
    exposes: [bool; 4],
    masks: [Option<u8>; 4],
}

fn model_grant() -> impl Strategy<Value = ModelGrant> {
    (
        proptest::option::weighted(0.7, proptest::collection::btree_set(0..ROWS, 0..ROWS)),
        [any::<bool>(); 4],
        [
            proptest::option::of(0u8..2),
            proptest::option::of(0u8..2),
            proptest::option::of(0u8..2),
            proptest::option::of(0u8..2),
        ],
    )
        .prop_map(|(rows, exposes, masks)| ModelGrant {
            rows,
            exposes,
            masks,
        })
}

/// What a cell should show per the definition: Raw, Masked(k) or Null.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    Raw,
    Masked(String),
    Null,
}

fn to_grants(model: &[ModelGrant]) -> Vec<Grant> {
    model
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut g = grant(&format!("g{i}"), "r", "shop.orders");
            g.row_filter = m.rows.as_ref().map(|_| format!("filter_of_g{i}"));
            let exposed: Vec<String> = COLUMNS
                .iter()
                .zip(m.exposes)
                .filter(|(_, e)| *e)
                .map(|(c, _)| c.to_string())
                .collect();
            g.columns = ColumnSelection::Include(exposed);
            for (c, mask) in COLUMNS.iter().zip(m.masks) {
                if let Some(k) = mask {
                    let name = if k == 0 { "hash" } else { "redact" };
                    g.masks
                        .insert(c.to_string(), ColumnMask::builtin(name).unwrap());
                }
            }
            g
        })
        .collect()
}

fn admits(model: &[ModelGrant], grant_name: &str, row: usize) -> bool {
    let index: usize = grant_name[1..].parse().unwrap();
    model[index]
        .rows
        .as_ref()
        .is_none_or(|rows| rows.contains(&row))
}

proptest! {
    #[test]
    fn resolver_matches_definition(model in proptest::collection::vec(model_grant(), 1..5)) {
        let grants = to_grants(&model);
        let cols = columns(&COLUMNS);
        let access = EffectiveAccess::resolve("r", &orders(), &cols, &grants).unwrap();

        // Columns: visible iff some grant exposes them.
        let expected_columns: Vec<&str> = COLUMNS
            .iter()
            .enumerate()
            .filter(|(i, _)| model.iter().any(|m| m.exposes[*i]))
            .map(|(_, c)| *c)
            .collect();
        let got_columns: Vec<&str> = access.columns.iter().map(|c| c.name.as_str()).collect();
        prop_assert_eq!(got_columns, expected_columns);

        for row in 0..ROWS {
            // Rows: visible iff some grant admits them.
            let expected_visible = model.iter().any(|m| m.rows.as_ref().is_none_or(|r| r.contains(&row)));
            let got_visible = match &access.row_filter {
                RowFilter::AllRows => true,
                RowFilter::AnyOf(preds) => preds.iter().any(|p| admits(&model, &p.grant, row)),
            };
            prop_assert_eq!(got_visible, expected_visible);
            if !expected_visible {
                continue;
            }
            for column in &access.columns {
                let ci = COLUMNS.iter().position(|c| *c == column.name).unwrap();
                // Definition: raw if an admitting grant exposes it unmasked;
                // else the first admitting exposing grant's mask; else NULL.
                let admitting: Vec<&ModelGrant> = model
                    .iter()
                    .filter(|m| m.rows.as_ref().is_none_or(|r| r.contains(&row)) && m.exposes[ci])
                    .collect();
                let expected = if admitting.iter().any(|m| m.masks[ci].is_none()) {
                    Cell::Raw
                } else if let Some(m) = admitting.first() {
                    Cell::Masked(if m.masks[ci] == Some(0) { "hash" } else { "redact" }.to_string())
                } else {
                    Cell::Null
                };
                let got = column
                    .branches
                    .iter()
                    .find(|b| b.when.as_ref().is_none_or(|p| admits(&model, &p.grant, row)))
                    .map(|b| match &b.value {
                        CellValue::Raw => Cell::Raw,
                        CellValue::Masked(mask) => Cell::Masked(mask.name.clone()),
                    })
                    .unwrap_or(Cell::Null);
                prop_assert_eq!(&got, &expected, "row {} column {}", row, column.name);
                // The shortcut must agree with the branches.
                if let Some(uniform) = column.uniform_value(&access.row_filter) {
                    let uniform = match uniform {
                        CellValue::Raw => Cell::Raw,
                        CellValue::Masked(mask) => Cell::Masked(mask.name.clone()),
                    };
                    prop_assert_eq!(uniform, expected);
                }
            }
        }
    }
}

#[test]
fn dangling_references_are_refused_and_dropped_from_the_partial_policy() {
    let role = |name: &str| Role {
        name: name.into(),
        description: String::new(),
    };
    let user =
        |name: &str, groups: &[&str], may_assume: &[&str], default_role: Option<&str>| User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            may_assume: may_assume.iter().map(|r| r.to_string()).collect(),
            default_role: default_role.map(str::to_string),
        };
    let grant = |name: &str, role: &str| Grant {
        name: name.into(),
        role: role.into(),
        resource: Resource::parse("shop.orders").unwrap(),
        privileges: vec![Privilege::Select],
        grantable: false,
        columns: ColumnSelection::All,
        row_filter: None,
        masks: Default::default(),
    };
    let refused = PolicySet::try_new(
        [role("sales"), role("sales"), role("hr")],
        [
            user(
                "ann",
                &["retail", "ghosts"],
                &["sales", "admin"],
                Some("hr"),
            ),
            user("bob", &["retail"], &[], Some("hr")),
            user("ann", &[], &[], None),
        ],
        [Group {
            name: "retail".into(),
            may_assume: vec!["hr".into(), "finance".into()],
        }],
        [
            grant("g1", "sales"),
            grant("g2", "auditor"),
            grant("g1", "hr"),
        ],
    )
    .unwrap_err();
    let found: Vec<String> = refused.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "role 'sales': declared twice",
            "group 'retail': may assume unknown role 'finance'",
            "user 'ann': may assume unknown role 'admin'",
            "user 'ann': member of unknown group 'ghosts'",
            "user 'ann': declared twice",
            "grant 'g2': unknown role 'auditor'",
            "grant 'g1': declared twice",
        ]
    );
    // ann's default role comes through her group: valid. bob's too.
    let policy = refused.partial;
    assert_eq!(
        policy
            .runtime_role(&Principal::local("ann"), None)
            .unwrap()
            .role,
        "hr"
    );
    assert_eq!(
        policy
            .runtime_role(&Principal::local("bob"), None)
            .unwrap()
            .role,
        "hr"
    );
    assert!(!policy.may_assume("ann", "admin"));
    assert_eq!(policy.grants().count(), 1);

    let no_default = PolicySet::try_new(
        [role("sales")],
        [user("cy", &[], &["sales"], Some("hr"))],
        [],
        [],
    )
    .unwrap_err();
    assert_eq!(
        no_default.errors[0].to_string(),
        "user 'cy': default_role 'hr' is not a role the user may assume"
    );
    assert!(matches!(
        no_default
            .partial
            .runtime_role(&Principal::local("cy"), None),
        Err(RoleError::NoDefaultRole { .. })
    ));
}
