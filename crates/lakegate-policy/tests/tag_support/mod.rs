//! What the tag-policy tests share: one table `shop.orders` with columns
//! `c0`..`c3`, tag keys `a` and `b` (values `x`, `y`), grants and policies
//! for role `r`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use lakegate_policy::{
    ColumnSelection, Grant, PolicySet, Privilege, Resource, Role, TableName, TagDefinition,
    TagExpr, TagPolicy, Tagging, Tags,
};

pub const COLUMNS: [&str; 4] = ["c0", "c1", "c2", "c3"];

pub fn table() -> TableName {
    TableName::new("shop", "orders")
}

pub fn columns() -> Vec<String> {
    COLUMNS.iter().map(|c| c.to_string()).collect()
}

pub fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn definitions() -> BTreeMap<String, TagDefinition> {
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

pub fn expr(text: &str) -> TagExpr {
    text.parse().unwrap()
}

pub fn tagged_grant(name: &str, text: &str) -> Grant {
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

pub fn table_grant(name: &str) -> Grant {
    Grant {
        resource: Resource::Table(table()),
        ..tagged_grant(name, "a IS NULL")
    }
}

pub fn policy(grants: Vec<Grant>, tags: TagPolicy) -> PolicySet {
    let role = Role {
        name: "r".into(),
        description: String::new(),
    };
    PolicySet::try_new_tagged([role], [], [], grants, tags).expect("a consistent policy")
}

/// `orders` tagged a = x, its column c1 tagged a = y and c2 tagged b = x.
pub fn tagging() -> Tagging {
    let mut tagging = Tagging::default();
    tagging.tables.insert(table(), tags(&[("a", "x")]));
    let columns = tagging.columns.entry(table()).or_default();
    columns.insert("c1".into(), tags(&[("a", "y")]));
    columns.insert("c2".into(), tags(&[("b", "x")]));
    tagging
}

pub fn tag_policy() -> TagPolicy {
    TagPolicy {
        definitions: definitions(),
        tagging: tagging(),
        ..TagPolicy::default()
    }
}

pub fn visible(policy: &PolicySet) -> Option<Vec<String>> {
    policy
        .effective_access("r", &table(), &columns())
        .map(|access| access.columns.into_iter().map(|c| c.name).collect())
}

pub fn tags_of(key: &str, value: &str) -> Tags {
    tags(&[(key, value)])
}
