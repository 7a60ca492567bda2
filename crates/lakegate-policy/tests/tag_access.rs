//! Tag-driven policy: grants on tag expressions, tag masks and tag row
//! filters, alone and combined with per-table grants, one table test per
//! rule (the property test against a reference model is
//! `tag_access_model.rs`).

mod tag_support;

use lakegate_policy::{
    ColumnMask, PolicySet, Privilege, Resource, Role, RowFilter, TableName, TagMask, TagPolicy,
    TagRowFilter,
};

use tag_support::*;

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
