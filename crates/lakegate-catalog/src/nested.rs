//! A table's *policy columns*: the names grants, masks and tags govern.
//!
//! A flat column is one policy column. A struct column is governed field by
//! field: its policy columns are its leaf fields' dotted paths
//! (`customer.name`, `customer.address.city`), and so are the fields of the
//! structs in a list of structs (`orders.price` governs `price` in every
//! element of `orders`). A grant, mask or tag naming an inner path
//! (`customer`, `customer.address`) applies to every leaf beneath it.
//!
//! Anything else (a list of scalars, a map, a list of lists) is one leaf,
//! governed whole. A struct is not descended into when a field name in it
//! contains a dot or a path would repeat another column's name: its paths
//! would be ambiguous, so it is governed whole too.

use std::collections::BTreeSet;

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};

use crate::tags::field_id;

/// How a node of the policy tree holds its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NestedKind {
    /// A leaf: governed whole.
    Leaf,
    /// A struct: its fields are the children.
    Struct(Vec<PolicyNode>),
    /// A list (or large list) of structs: the element struct's fields are
    /// the children, governed in every element alike.
    ListOfStruct(Vec<PolicyNode>),
}

/// One column or nested field, with its dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyNode {
    /// The dotted path from the table's column (`customer.address.city`).
    pub path: String,
    /// The stored field at this path (for a list of structs, the list).
    pub field: FieldRef,
    /// Leaf, struct or list of structs.
    pub kind: NestedKind,
}

impl PolicyNode {
    /// The node's children (none for a leaf).
    pub fn children(&self) -> &[PolicyNode] {
        match &self.kind {
            NestedKind::Leaf => &[],
            NestedKind::Struct(children) | NestedKind::ListOfStruct(children) => children,
        }
    }

    /// Every leaf at or beneath this node, in field order.
    pub fn leaves(&self) -> Vec<&PolicyNode> {
        let mut leaves = Vec::new();
        self.collect_leaves(&mut leaves);
        leaves
    }

    fn collect_leaves<'a>(&'a self, into: &mut Vec<&'a PolicyNode>) {
        match &self.kind {
            NestedKind::Leaf => into.push(self),
            _ => self
                .children()
                .iter()
                .for_each(|child| child.collect_leaves(into)),
        }
    }

    fn find(&self, path: &str) -> Option<&PolicyNode> {
        if self.path == path {
            return Some(self);
        }
        let beneath = path
            .strip_prefix(self.path.as_str())
            .is_some_and(|rest| rest.starts_with('.'));
        if !beneath {
            return None;
        }
        self.children().iter().find_map(|child| child.find(path))
    }

    fn find_by_id(&self, id: i32) -> Option<&PolicyNode> {
        if field_id(&self.field) == Some(id) {
            return Some(self);
        }
        self.children()
            .iter()
            .find_map(|child| child.find_by_id(id))
    }
}

/// The policy tree of a table: one node per column, in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTree {
    /// The table's columns.
    pub columns: Vec<PolicyNode>,
}

impl PolicyTree {
    /// The tree of `schema`'s columns.
    pub fn of(schema: &Schema) -> Self {
        // Names a path must not repeat: every column's own name.
        let names: BTreeSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let columns = schema
            .fields()
            .iter()
            .map(|field| node(field.name().clone(), field, &names))
            .collect();
        Self { columns }
    }

    /// The policy columns: every leaf's path, in column and field order.
    pub fn leaf_paths(&self) -> Vec<String> {
        self.columns
            .iter()
            .flat_map(|column| column.leaves())
            .map(|leaf| leaf.path.clone())
            .collect()
    }

    /// The node at `path` (a column, a nested field or an inner struct).
    pub fn find(&self, path: &str) -> Option<&PolicyNode> {
        self.columns.iter().find_map(|column| column.find(path))
    }

    /// The path of the column or nested field whose Parquet field id is `id`.
    pub fn path_of_field_id(&self, id: i32) -> Option<&str> {
        self.columns
            .iter()
            .find_map(|column| column.find_by_id(id))
            .map(|node| node.path.as_str())
    }
}

fn node(path: String, field: &FieldRef, names: &BTreeSet<&str>) -> PolicyNode {
    let kind = match field.data_type() {
        DataType::Struct(fields) => match children(&path, fields, names) {
            Some(children) => NestedKind::Struct(children),
            None => NestedKind::Leaf,
        },
        DataType::List(element) | DataType::LargeList(element) => match element.data_type() {
            DataType::Struct(fields) => match children(&path, fields, names) {
                Some(children) => NestedKind::ListOfStruct(children),
                None => NestedKind::Leaf,
            },
            _ => NestedKind::Leaf,
        },
        _ => NestedKind::Leaf,
    };
    PolicyNode {
        path,
        field: FieldRef::clone(field),
        kind,
    }
}

/// The children of a struct at `path`, or `None` when they cannot be named
/// unambiguously (no fields, a dotted name, or a path naming a column).
fn children(path: &str, fields: &Fields, names: &BTreeSet<&str>) -> Option<Vec<PolicyNode>> {
    if fields.is_empty() || path.is_empty() {
        return None;
    }
    let mut children = Vec::with_capacity(fields.len());
    for field in fields.iter() {
        let name = field.name();
        if name.is_empty() || name.contains('.') {
            return None;
        }
        let child = format!("{path}.{name}");
        if names.contains(child.as_str()) {
            return None;
        }
        children.push(node(child, field, names));
    }
    Some(children)
}

/// A field of the same name and type with every nested field nullable: the
/// type a rebuilt (pruned, masked) struct is served as.
pub fn nullable_field(field: &Field, data_type: DataType) -> Field {
    Field::new(field.name(), data_type, true).with_metadata(field.metadata().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn schema() -> Schema {
        let address = Fields::from(vec![Field::new("city", DataType::Utf8, true)]);
        let customer = Fields::from(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("address", DataType::Struct(address), true),
        ]);
        let order = Fields::from(vec![Field::new("price", DataType::Float64, true)]);
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("customer", DataType::Struct(customer), true),
            Field::new(
                "orders",
                DataType::List(Arc::new(Field::new_struct("item", order, true))),
                true,
            ),
            Field::new(
                "scores",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
        ])
    }

    #[test]
    fn leaves_are_the_paths_through_structs_and_lists_of_structs() {
        let tree = PolicyTree::of(&schema());
        assert_eq!(
            tree.leaf_paths(),
            [
                "id",
                "customer.name",
                "customer.address.city",
                "orders.price",
                "scores"
            ]
        );
        assert!(tree.find("customer.address").is_some());
        assert!(tree.find("customer.addr").is_none());
        assert!(tree.find("customer.name.x").is_none());
    }

    #[test]
    fn ambiguous_structs_are_governed_whole() {
        let inner = Fields::from(vec![Field::new("b", DataType::Utf8, true)]);
        let dotted = Fields::from(vec![Field::new("x.y", DataType::Utf8, true)]);
        let schema = Schema::new(vec![
            Field::new("a", DataType::Struct(inner), true),
            Field::new("a.b", DataType::Utf8, true),
            Field::new("d", DataType::Struct(dotted), true),
        ]);
        assert_eq!(PolicyTree::of(&schema).leaf_paths(), ["a", "a.b", "d"]);
    }
}
