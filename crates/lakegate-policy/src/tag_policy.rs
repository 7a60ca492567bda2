//! Policy driven by tags: which tags databases, tables and columns carry
//! ([`Tagging`]), and the masks and row filters attached to tag expressions
//! rather than to tables ([`TagMask`], [`TagRowFilter`]). Together with
//! grants on [`crate::Resource::Tagged`] they let a steward govern by tags
//! alone: a table or column is governed the moment it is tagged.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use serde::Serialize;
use sqlparser::ast::{Expr, Query, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::model::{ColumnMask, TableName, governing_paths};
use crate::tags::{TagDefinition, TagExpr, Tags, inherit};

/// The tags assigned to databases, tables and columns: each level's own
/// tags, before inheritance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tagging {
    /// Tags of each database.
    pub databases: BTreeMap<String, Tags>,
    /// Tags each table sets itself.
    pub tables: BTreeMap<TableName, Tags>,
    /// Tags each column sets itself, by table and column name.
    pub columns: BTreeMap<TableName, BTreeMap<String, Tags>>,
}

impl Tagging {
    /// Whether nothing is tagged.
    pub fn is_empty(&self) -> bool {
        self.databases.is_empty() && self.tables.is_empty() && self.columns.is_empty()
    }

    /// The tags `table` carries: its database's, overridden key by key by
    /// its own.
    pub fn table_tags(&self, table: &TableName) -> Tags {
        let empty = Tags::new();
        let database = self.databases.get(&table.database).unwrap_or(&empty);
        match self.tables.get(table) {
            Some(own) => inherit(database, own),
            None => database.clone(),
        }
    }

    /// The tags `column` of `table` (one of its `policy_columns`: a column
    /// or a nested field's dotted path) carries, given the table's own
    /// effective tags (from [`Tagging::table_tags`]): the table's,
    /// overridden by each struct holding the field, outermost first, then
    /// by its own (the inheritance tag policies decide by).
    pub fn column_tags(
        &self,
        table: &TableName,
        column: &str,
        policy_columns: &[String],
        table_tags: &Tags,
    ) -> Tags {
        let Some(columns) = self.columns.get(table) else {
            return table_tags.clone();
        };
        let paths: Vec<&str> = governing_paths(column, policy_columns).collect();
        paths
            .iter()
            .rev()
            .filter_map(|path| columns.get(*path))
            .fold(table_tags.clone(), |tags, own| inherit(&tags, own))
    }

    /// Every tag assignment, as (what, its own tags), for checks.
    pub fn assignments(&self) -> impl Iterator<Item = (String, &Tags)> {
        let databases = self
            .databases
            .iter()
            .map(|(name, tags)| (format!("database '{name}'"), tags));
        let tables = self
            .tables
            .iter()
            .map(|(name, tags)| (format!("table '{name}'"), tags));
        let columns = self.columns.iter().flat_map(|(table, columns)| {
            columns
                .iter()
                .map(move |(column, tags)| (format!("column '{table}.{column}'"), tags))
        });
        databases.chain(tables).chain(columns)
    }
}

/// A mask on every column whose tags match an expression, for one role:
/// `MASK COLUMNS TAGGED pii = 'email' USING hash FOR ROLE r`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagMask {
    /// A name unique among grants and tag policies.
    pub name: String,
    /// The role whose view is masked.
    pub role: String,
    /// The columns masked: those whose effective tags match.
    pub tagged: TagExpr,
    /// The mask (a built-in: it must apply to columns of any table).
    pub mask: ColumnMask,
}

/// A row filter on every table whose tags match an expression, for one
/// role: `ROW FILTER ON TAGGED domain = 'sales' FOR ROLE r WHERE ...`.
/// Every row the role sees of such a table satisfies it, on top of what the
/// role's grants admit; a matching table lacking a column the filter reads
/// is refused to the role (never served unfiltered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagRowFilter {
    /// A name unique among grants and tag policies.
    pub name: String,
    /// The role whose rows are filtered.
    pub role: String,
    /// The tables filtered: those whose effective tags match.
    pub tagged: TagExpr,
    /// SQL boolean expression over a matching table's columns.
    pub sql: String,
    /// The table's columns the filter reads (outside its subqueries).
    pub columns: BTreeSet<String>,
}

impl TagRowFilter {
    /// A tag row filter, finding the columns `sql` reads.
    pub fn new(
        name: impl Into<String>,
        role: impl Into<String>,
        tagged: TagExpr,
        sql: impl Into<String>,
    ) -> Result<Self, String> {
        let sql = sql.into();
        let columns = columns_read(&sql)?;
        Ok(Self {
            name: name.into(),
            role: role.into(),
            tagged,
            sql,
            columns,
        })
    }
}

/// Everything tag-driven in a policy: the tag definitions, the tagging,
/// and the tag masks and row filters. (Grants on tag expressions are
/// grants like the others.)
#[derive(Debug, Clone, Default)]
pub struct TagPolicy {
    /// Tag keys and their allowed values.
    pub definitions: BTreeMap<String, TagDefinition>,
    /// Tags on databases, tables and columns.
    pub tagging: Tagging,
    /// Masks attached to tag expressions.
    pub masks: Vec<TagMask>,
    /// Row filters attached to tag expressions.
    pub row_filters: Vec<TagRowFilter>,
}

/// The longest tag row filter accepted, in bytes.
pub const MAX_TAG_FILTER_BYTES: usize = 16 * 1024;

/// How deeply a row filter's parentheses and function calls may nest.
const RECURSION_LIMIT: usize = 64;

/// How deeply a row filter's expression tree may go, chains of AND and OR
/// included (sqlparser builds them as deep trees, without recursion).
const MAX_EXPR_DEPTH: usize = 1_000;

/// The columns of the filtered table that `sql`, a row filter, reads:
/// every identifier outside a subquery (the last part of a qualified one),
/// normalised as DataFusion does (unquoted names lower-cased). Identifiers
/// inside a subquery belong to its own tables and are left out.
pub fn columns_read(sql: &str) -> Result<BTreeSet<String>, String> {
    if sql.len() > MAX_TAG_FILTER_BYTES {
        return Err(format!(
            "row filter of {} bytes, longer than the {MAX_TAG_FILTER_BYTES} accepted",
            sql.len()
        ));
    }
    let expr = Parser::new(&GenericDialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(|e| format!("row filter does not parse: {e}"))?;
    let mut reader = ColumnReader::default();
    match expr.visit(&mut reader) {
        ControlFlow::Continue(()) => Ok(reader.columns),
        ControlFlow::Break(()) => Err(format!(
            "row filter nests more than {MAX_EXPR_DEPTH} expressions deep"
        )),
    }
}

/// Collects identifiers outside subqueries.
#[derive(Default)]
struct ColumnReader {
    subquery_depth: usize,
    expr_depth: usize,
    columns: BTreeSet<String>,
}

impl Visitor for ColumnReader {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.subquery_depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.subquery_depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.expr_depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        self.expr_depth += 1;
        if self.expr_depth > MAX_EXPR_DEPTH {
            return ControlFlow::Break(());
        }
        if self.subquery_depth > 0 {
            return ControlFlow::Continue(());
        }
        let ident = match expr {
            Expr::Identifier(ident) => Some(ident),
            Expr::CompoundIdentifier(parts) => parts.last(),
            _ => None,
        };
        if let Some(ident) = ident {
            let name = match ident.quote_style {
                Some(_) => ident.value.clone(),
                None => ident.value.to_lowercase(),
            };
            self.columns.insert(name);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_filter_reads_its_identifiers_outside_subqueries() {
        assert_eq!(
            columns_read("Region = 'EU' AND t.\"Amount\" > 5").unwrap(),
            set(&["region", "Amount"])
        );
        assert_eq!(
            columns_read(
                "ws_bill_addr_sk IN (SELECT ca_address_sk FROM addr WHERE ca_state = 'CA')"
            )
            .unwrap(),
            set(&["ws_bill_addr_sk"])
        );
        assert_eq!(
            columns_read("owner = current_user()").unwrap(),
            set(&["owner"])
        );
        assert!(columns_read("region = ").is_err());
        let deep = format!("{}a{}", "(".repeat(5_000), ")".repeat(5_000));
        assert!(columns_read(&deep).is_err());
        let long = vec!["a = 1"; 1_500].join(" AND ");
        let error = columns_read(&long).unwrap_err();
        assert!(error.contains("deep"), "{error}");
    }

    #[test]
    fn tags_are_inherited_from_database_to_table_to_column() {
        let table = TableName::new("shop", "orders");
        let mut tagging = Tagging::default();
        tagging.databases.insert(
            "shop".into(),
            Tags::from([("domain".into(), "sales".into())]),
        );
        tagging
            .columns
            .entry(table.clone())
            .or_default()
            .insert("email".into(), Tags::from([("pii".into(), "email".into())]));
        let table_tags = tagging.table_tags(&table);
        assert_eq!(table_tags, Tags::from([("domain".into(), "sales".into())]));
        let email = tagging.column_tags(&table, "email", &[], &table_tags);
        assert_eq!(email.len(), 2);
        assert_eq!(
            tagging.column_tags(&table, "id", &[], &table_tags),
            table_tags
        );
    }
}
