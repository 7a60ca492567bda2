//! Row and distinct-value estimates of a plan's inputs, from their tables'
//! statistics and the filters above their scans: what the join-order and
//! aggregate-reduction rules decide by.
//!
//! An input is a table scan beneath filters, aliases and projections of
//! bare columns. Its rows are the table's row count times
//! [`CONJUNCT_SELECTIVITY`] per distinct filter conjunct; a column's
//! distinct values come from its statistics (distinct count, or an
//! integer's range), bounded by the rows. Behind a policy a secured table
//! reports only a row count (`SecuredTable::visible_statistics`), so no
//! estimate here reflects a hidden value.

use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, Statistics, TableReference};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};

/// The share of rows a filter conjunct is assumed to keep (DataFusion's
/// own default filter selectivity, 20 %).
const CONJUNCT_SELECTIVITY: f64 = 0.2;

/// The most conjuncts an input's estimate counts: past a few, the estimate
/// is one row anyway, and a 100,000-term predicate must not cost more.
const MAX_COUNTED_CONJUNCTS: usize = 8;

/// Whether a projection's expressions are bare columns (it only narrows).
pub(crate) fn only_columns(exprs: &[Expr]) -> bool {
    exprs.iter().all(|e| matches!(e, Expr::Column(_)))
}

/// A table scan beneath filters, aliases and projections of bare columns:
/// an input whose rows are a table's, filtered.
pub(crate) struct FilteredScan<'a> {
    pub(crate) scan: &'a TableScan,
    /// The filters' predicates, and those pushed into the scan.
    pub(crate) predicates: Vec<&'a Expr>,
    /// The outermost alias, which qualifies the input's columns.
    pub(crate) alias: Option<&'a TableReference>,
}

impl<'a> FilteredScan<'a> {
    /// `plan` as a filtered scan; `None` for anything else.
    pub(crate) fn of(plan: &'a LogicalPlan) -> Option<Self> {
        let mut predicates: Vec<&Expr> = Vec::new();
        let mut alias = None;
        let mut node = plan;
        let scan = loop {
            match node {
                LogicalPlan::TableScan(scan) => break scan,
                LogicalPlan::Filter(filter) => {
                    predicates.push(&filter.predicate);
                    node = &filter.input;
                }
                LogicalPlan::SubqueryAlias(subquery_alias) => {
                    alias.get_or_insert(&subquery_alias.alias);
                    node = &subquery_alias.input;
                }
                LogicalPlan::Projection(projection) if only_columns(&projection.expr) => {
                    node = &projection.input;
                }
                _ => return None,
            }
        };
        predicates.extend(&scan.filters);
        Some(Self {
            scan,
            predicates,
            alias,
        })
    }
}

/// What one input of a join is estimated to return.
pub(crate) struct InputEstimate {
    pub(crate) rows: f64,
    /// The rows of its whole table, before any filter.
    table_rows: f64,
    /// The input's table's statistics, and its schema's column names.
    table: Statistics,
    names: Vec<String>,
}

impl InputEstimate {
    /// The estimate of a table scan beneath filters, aliases and projections
    /// of bare columns; `None` for anything else or a table without
    /// statistics.
    pub(crate) fn of(input: &LogicalPlan) -> Option<Self> {
        let FilteredScan {
            scan, predicates, ..
        } = FilteredScan::of(input)?;
        let provider = source_as_provider(&scan.source).ok()?;
        let table = provider.statistics()?;
        let table_rows = *table.num_rows.get_value()? as f64;
        let conjuncts = selective_conjuncts(&predicates);
        let mut rows = table_rows * CONJUNCT_SELECTIVITY.powi(conjuncts);
        if let Some(fetch) = scan.fetch {
            rows = rows.min(fetch as f64);
        }
        let names = provider
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        Some(Self {
            rows: rows.max(1.0),
            table_rows,
            table,
            names,
        })
    }

    /// Estimated distinct values of the column `name` in this input: as in
    /// its whole table ([`Self::table_distinct`]), never more than the
    /// input's rows.
    pub(crate) fn distinct(&self, name: &str) -> f64 {
        self.table_distinct(name).min(self.rows)
    }

    /// Estimated distinct values of the column `name` in the whole table:
    /// its statistics' distinct count, or for an integer its range, or else
    /// one per row (a key); never more than the table's rows.
    pub(crate) fn table_distinct(&self, name: &str) -> f64 {
        let known = self
            .names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.table.column_statistics.get(i))
            .and_then(|column| {
                column
                    .distinct_count
                    .get_value()
                    .map(|d| *d as f64)
                    .or_else(|| {
                        let (min, max) =
                            (column.min_value.get_value()?, column.max_value.get_value()?);
                        min.distance(max).map(|d| d as f64 + 1.0)
                    })
            });
        known.unwrap_or(f64::INFINITY).min(self.table_rows)
    }
}

/// How many distinct conjuncts of `predicates` narrow the rows, counted up
/// to [`MAX_COUNTED_CONJUNCTS`]: a predicate kept above an inexactly pushed
/// copy counts once, and a key's `IS NOT NULL` (added for every nullable
/// join key) keeps all rows.
fn selective_conjuncts(predicates: &[&Expr]) -> i32 {
    let mut counted: Vec<&Expr> = Vec::new();
    let conjuncts = predicates.iter().flat_map(|p| split_conjunction(p));
    for conjunct in conjuncts {
        if counted.len() == MAX_COUNTED_CONJUNCTS {
            break;
        }
        if !matches!(conjunct, Expr::IsNotNull(_))
            && !counted.iter().any(|c| unqualified_eq(c, conjunct))
        {
            counted.push(conjunct);
        }
    }
    counted.len() as i32
}

/// Whether two predicates are the same but for their columns' qualifiers
/// (a scan's pushed copy names the table, the filter above its alias).
fn unqualified_eq(a: &Expr, b: &Expr) -> bool {
    unqualified(a).ok() == unqualified(b).ok()
}

/// `expr` with every column unqualified: the same predicate whatever its
/// columns are qualified by (the table's name, or an alias of it).
pub(crate) fn unqualified(expr: &Expr) -> Result<Expr> {
    expr.clone()
        .transform(|e| {
            Ok(match e {
                Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
                other => Transformed::no(other),
            })
        })
        .map(|t| t.data)
}
