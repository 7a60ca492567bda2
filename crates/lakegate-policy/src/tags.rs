//! Tags (Lake Formation's LF-Tags and beyond): keys with allowed values,
//! assigned to databases, tables and columns, inherited downwards, and the
//! boolean expressions over them that tag-driven grants are written in.
//!
//! ```text
//! database tags ──▶ table tags (a key set on the table overrides the database's)
//!                      ──▶ column tags (a key set on the column overrides the table's)
//!
//! TagExpr over a resource's effective tags:
//!   domain = 'sales' AND NOT pii IN ('email', 'phone') OR pii IS NULL
//! ```
//!
//! A resource carries at most one value per key, as in Lake Formation. A key
//! a resource does not carry compares as no value, in two-valued logic:
//! `pii = 'email'` and `pii IN (...)` are false, so `NOT pii = 'email'` is
//! true, and `pii IS NULL` is true. (SQL's three-valued logic would make
//! `NOT pii IN ('email')` exclude every untagged column, which is not what a
//! steward writing it means.)

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A tag key and the values it may take (`CREATE TAG pii VALUES (...)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDefinition {
    /// The key.
    pub key: String,
    /// The values a resource may carry for it.
    pub values: BTreeSet<String>,
}

/// The tags a resource carries: at most one value per key.
pub type Tags = BTreeMap<String, String>;

/// The tags of a resource below `inherited`'s: its own, and every key of
/// the level above that it does not set itself.
pub fn inherit(inherited: &Tags, own: &Tags) -> Tags {
    let mut effective = inherited.clone();
    effective.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    effective
}

/// Why tags or an expression do not fit the tag definitions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A key no definition declares.
    #[error("unknown tag '{0}'")]
    UnknownKey(String),
    /// A value the key's definition does not allow.
    #[error("tag '{key}' has no value '{value}' (its values: {allowed})")]
    UnknownValue {
        /// The key.
        key: String,
        /// The value used.
        value: String,
        /// The allowed values, listed.
        allowed: String,
    },
}

/// A boolean expression over a resource's effective tags. Written and
/// shown as SQL-like text (`FromStr` and `Display`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagExpr {
    /// `key = 'value'`.
    Equals {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `key IN ('a', 'b')`.
    In {
        /// The key.
        key: String,
        /// The values.
        values: BTreeSet<String>,
    },
    /// `key IS NULL`: the resource does not carry the key.
    Untagged(String),
    /// `NOT expr`.
    Not(Box<TagExpr>),
    /// `a AND b AND ...` (true when empty).
    And(Vec<TagExpr>),
    /// `a OR b OR ...` (false when empty).
    Or(Vec<TagExpr>),
}

impl TagExpr {
    /// Whether a resource carrying `tags` matches.
    pub fn matches(&self, tags: &Tags) -> bool {
        self.matches_with(&|key| tags.get(key).map(String::as_str))
    }

    /// Whether a resource matches whose value for each key `value_of`
    /// gives (for layered tags: a column's own, then its table's, without
    /// building the merged map).
    pub fn matches_with<'v>(&self, value_of: &dyn Fn(&str) -> Option<&'v str>) -> bool {
        match self {
            Self::Equals { key, value } => value_of(key) == Some(value.as_str()),
            Self::In { key, values } => value_of(key).is_some_and(|v| values.contains(v)),
            Self::Untagged(key) => value_of(key).is_none(),
            Self::Not(inner) => !inner.matches_with(value_of),
            Self::And(all) => all.iter().all(|e| e.matches_with(value_of)),
            Self::Or(any) => any.iter().any(|e| e.matches_with(value_of)),
        }
    }

    /// Every key the expression reads.
    pub fn keys(&self) -> BTreeSet<&str> {
        let mut keys = BTreeSet::new();
        self.collect_keys(&mut keys);
        keys
    }

    fn collect_keys<'a>(&'a self, keys: &mut BTreeSet<&'a str>) {
        match self {
            Self::Equals { key, .. } | Self::In { key, .. } | Self::Untagged(key) => {
                keys.insert(key);
            }
            Self::Not(inner) => inner.collect_keys(keys),
            Self::And(items) | Self::Or(items) => {
                for item in items {
                    item.collect_keys(keys);
                }
            }
        }
    }

    /// Checks every key and value against `definitions`: an expression
    /// naming a key or value that does not exist is a mistake (a typo would
    /// otherwise match nothing, or, under NOT, everything).
    pub fn check(&self, definitions: &BTreeMap<String, TagDefinition>) -> Result<(), TagError> {
        match self {
            Self::Equals { key, value } => check_value(definitions, key, value),
            Self::In { key, values } => values
                .iter()
                .try_for_each(|value| check_value(definitions, key, value)),
            Self::Untagged(key) => definition(definitions, key).map(drop),
            Self::Not(inner) => inner.check(definitions),
            Self::And(items) | Self::Or(items) => {
                items.iter().try_for_each(|item| item.check(definitions))
            }
        }
    }
}

/// Checks a resource's own tags against `definitions`.
pub fn check_tags(
    definitions: &BTreeMap<String, TagDefinition>,
    tags: &Tags,
) -> Result<(), TagError> {
    tags.iter()
        .try_for_each(|(key, value)| check_value(definitions, key, value))
}

fn definition<'a>(
    definitions: &'a BTreeMap<String, TagDefinition>,
    key: &str,
) -> Result<&'a TagDefinition, TagError> {
    definitions
        .get(key)
        .ok_or_else(|| TagError::UnknownKey(key.to_string()))
}

fn check_value(
    definitions: &BTreeMap<String, TagDefinition>,
    key: &str,
    value: &str,
) -> Result<(), TagError> {
    let definition = definition(definitions, key)?;
    if definition.values.contains(value) {
        return Ok(());
    }
    Err(TagError::UnknownValue {
        key: key.to_string(),
        value: value.to_string(),
        allowed: definition
            .values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn eq(key: &str, value: &str) -> TagExpr {
        TagExpr::Equals {
            key: key.into(),
            value: value.into(),
        }
    }

    fn within(key: &str, values: &[&str]) -> TagExpr {
        TagExpr::In {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn lower_levels_inherit_and_override() {
        let database = tags(&[("domain", "sales"), ("tier", "gold")]);
        let table = inherit(&database, &tags(&[("tier", "silver")]));
        let column = inherit(&table, &tags(&[("pii", "email")]));
        assert_eq!(
            column,
            tags(&[("domain", "sales"), ("tier", "silver"), ("pii", "email")])
        );
    }

    #[test]
    fn the_issue_example_and_untagged_columns() {
        // domain = 'sales' AND NOT pii IN ('email', 'phone')
        let expr = TagExpr::And(vec![
            eq("domain", "sales"),
            TagExpr::Not(Box::new(within("pii", &["email", "phone"]))),
        ]);
        assert!(expr.matches(&tags(&[("domain", "sales")])));
        assert!(expr.matches(&tags(&[("domain", "sales"), ("pii", "name")])));
        assert!(!expr.matches(&tags(&[("domain", "sales"), ("pii", "email")])));
        assert!(!expr.matches(&tags(&[("domain", "hr")])));
        let untagged = TagExpr::Untagged("pii".into());
        assert!(untagged.matches(&tags(&[("domain", "sales")])));
        assert!(!untagged.matches(&tags(&[("pii", "phone")])));
        assert_eq!(expr.keys(), BTreeSet::from(["domain", "pii"]));
    }

    #[test]
    fn expressions_are_checked_against_the_definitions() {
        let definitions: BTreeMap<String, TagDefinition> = [("pii", &["email", "phone"][..])]
            .into_iter()
            .map(|(key, values)| {
                let definition = TagDefinition {
                    key: key.into(),
                    values: values.iter().map(|v| v.to_string()).collect(),
                };
                (key.to_string(), definition)
            })
            .collect();
        assert!(within("pii", &["email"]).check(&definitions).is_ok());
        assert_eq!(
            eq("domian", "sales").check(&definitions),
            Err(TagError::UnknownKey("domian".into()))
        );
        let error = TagExpr::Not(Box::new(eq("pii", "emial")))
            .check(&definitions)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "tag 'pii' has no value 'emial' (its values: 'email', 'phone')"
        );
        assert!(check_tags(&definitions, &tags(&[("pii", "fax")])).is_err());
    }

    fn arbitrary_tags() -> impl Strategy<Value = Tags> {
        prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string),
            prop::sample::select(vec!["x", "y", "z"]).prop_map(str::to_string),
            0..3,
        )
    }

    fn arbitrary_expr() -> impl Strategy<Value = TagExpr> {
        let key = prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_string);
        let value = prop::sample::select(vec!["x", "y", "z"]).prop_map(str::to_string);
        let leaf = prop_oneof![
            (key.clone(), value.clone()).prop_map(|(key, value)| TagExpr::Equals { key, value }),
            (key.clone(), prop::collection::btree_set(value, 0..3))
                .prop_map(|(key, values)| TagExpr::In { key, values }),
            key.prop_map(TagExpr::Untagged),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| TagExpr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 0..3).prop_map(TagExpr::And),
                prop::collection::vec(inner, 0..3).prop_map(TagExpr::Or),
            ]
        })
    }

    #[test]
    fn odd_keys_and_values_are_quoted_when_shown() {
        let expr = TagExpr::And(vec![
            eq("Cost Center", "r&d's"),
            TagExpr::Not(Box::new(TagExpr::Untagged("in".into()))),
            TagExpr::Or(vec![eq("a", "x"), within("b", &[])]),
        ]);
        let text = expr.to_string();
        assert_eq!(
            text,
            "\"Cost Center\" = 'r&d''s' AND NOT \"in\" IS NULL AND (a = 'x' OR FALSE)"
        );
        assert_eq!(text.parse::<TagExpr>().unwrap().to_string(), text);
    }

    proptest! {
        /// What `Display` writes parses back to an expression matching the
        /// same tags (chains may come back flattened).
        #[test]
        fn shown_expressions_parse_back(expr in arbitrary_expr(), tags in arbitrary_tags()) {
            let text = expr.to_string();
            let parsed: TagExpr = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(parsed.matches(&tags), expr.matches(&tags), "{}", text);
        }

        /// Two-valued logic: De Morgan holds, and a key is either untagged
        /// or carries exactly one of its values.
        #[test]
        fn two_valued_logic(a in arbitrary_expr(), b in arbitrary_expr(), tags in arbitrary_tags()) {
            let not = |e: &TagExpr| TagExpr::Not(Box::new(e.clone()));
            let left = not(&TagExpr::And(vec![a.clone(), b.clone()]));
            let right = TagExpr::Or(vec![not(&a), not(&b)]);
            prop_assert_eq!(left.matches(&tags), right.matches(&tags));
            prop_assert_eq!(not(&not(&a)).matches(&tags), a.matches(&tags));
            for key in ["a", "b", "c"] {
                let any_value = within(key, &["x", "y", "z"]);
                let untagged = TagExpr::Untagged(key.into());
                prop_assert!(any_value.matches(&tags) != untagged.matches(&tags));
            }
        }
    }
}
