//! Benchmark: resolving access governed by tags versus the same access
//! written as per-table grants, measured in the same run.
//!
//! The lake: 1,000 tables in 10 databases, 10 columns each; 50 tags (10
//! keys of 5 values); every table tagged (`domain`, `tier`) and every
//! column tagged (`pii`): 10,000 column tag assignments. 50 roles hold 10
//! grants on tag expressions each (500 in all). The baseline is the same
//! access as per-table grants: for each role and each table its tag grants
//! reach, one grant of exactly the columns they expose (computed from the
//! tag policy, and checked to resolve to the same columns).
//!
//! Reported: time per `effective_access(role, table)` over every (role,
//! table) pair, for both policies, and their ratio (target: within 2x).
//!
//! Run: `cargo bench -p lakegate-policy --bench tag_resolution`. Under
//! `cargo test` it builds both policies, checks that they agree, and
//! times one pass.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use lakegate_policy::{
    ColumnSelection, Grant, PolicySet, Privilege, Resource, Role, TableName, TagDefinition,
    TagExpr, TagPolicy, Tagging, Tags,
};

const DATABASES: usize = 10;
const TABLES_PER_DATABASE: usize = 100;
const COLUMNS: usize = 10;
const KEYS: usize = 10;
const VALUES: usize = 5;
const ROLES: usize = 50;
const GRANTS_PER_ROLE: usize = 10;

fn tables() -> Vec<TableName> {
    (0..DATABASES)
        .flat_map(|d| {
            (0..TABLES_PER_DATABASE)
                .map(move |t| TableName::new(format!("db{d}"), format!("t{t:03}")))
        })
        .collect()
}

fn columns() -> Vec<String> {
    (0..COLUMNS).map(|c| format!("c{c}")).collect()
}

fn roles() -> Vec<Role> {
    (0..ROLES)
        .map(|r| Role {
            name: format!("r{r:02}"),
            description: String::new(),
        })
        .collect()
}

fn tag(key: usize, value: usize) -> (String, String) {
    (format!("k{key}"), format!("v{value}"))
}

/// The tag policy: definitions and tags on every table and column.
fn tag_policy(tables: &[TableName]) -> TagPolicy {
    let definitions = (0..KEYS)
        .map(|k| {
            let definition = TagDefinition {
                key: format!("k{k}"),
                values: (0..VALUES).map(|v| format!("v{v}")).collect(),
            };
            (definition.key.clone(), definition)
        })
        .collect();
    let mut tagging = Tagging::default();
    for (i, table) in tables.iter().enumerate() {
        // k0: the domain, k1: the tier.
        tagging.tables.insert(
            table.clone(),
            Tags::from([tag(0, i % VALUES), tag(1, (i / 7) % VALUES)]),
        );
        let columns: BTreeMap<String, Tags> = (0..COLUMNS)
            .map(|c| (format!("c{c}"), Tags::from([tag(2, (i + c) % VALUES)])))
            .collect();
        tagging.columns.insert(table.clone(), columns);
    }
    TagPolicy {
        definitions,
        tagging,
        ..TagPolicy::default()
    }
}

/// Ten grants on tag expressions per role.
fn tag_grants() -> Vec<Grant> {
    let mut grants = Vec::new();
    for r in 0..ROLES {
        for g in 0..GRANTS_PER_ROLE {
            let text = format!(
                "k0 = 'v{}' AND k1 IN ('v{}', 'v{}') AND NOT k2 = 'v{}'",
                (r + g) % VALUES,
                g % VALUES,
                (g + 1) % VALUES,
                r % VALUES
            );
            let expr: TagExpr = text.parse().expect("a tag expression");
            grants.push(Grant {
                name: format!("r{r:02}_tagged_{g}"),
                role: format!("r{r:02}"),
                resource: Resource::Tagged(expr),
                privileges: vec![Privilege::Select],
                grantable: false,
                columns: ColumnSelection::All,
                row_filter: None,
                masks: BTreeMap::new(),
            });
        }
    }
    grants
}

/// The same access as per-table grants of the exposed columns.
fn per_table_grants(tagged: &PolicySet, tables: &[TableName], columns: &[String]) -> Vec<Grant> {
    let mut grants = Vec::new();
    for role in tagged.roles() {
        for table in tables {
            let Some(access) = tagged.effective_access(&role.name, table, columns) else {
                continue;
            };
            grants.push(Grant {
                name: format!("{}_{table}", role.name),
                role: role.name.clone(),
                resource: Resource::Table(table.clone()),
                privileges: vec![Privilege::Select],
                grantable: false,
                columns: ColumnSelection::Include(
                    access.columns.iter().map(|c| c.name.clone()).collect(),
                ),
                row_filter: None,
                masks: BTreeMap::new(),
            });
        }
    }
    grants
}

/// Time to resolve every (role, table) pair once, the fastest of `rounds`.
fn pass(policy: &PolicySet, tables: &[TableName], columns: &[String], rounds: usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        for r in 0..ROLES {
            let role = format!("r{r:02}");
            for table in tables {
                black_box(policy.effective_access(black_box(&role), table, columns));
            }
        }
        best = best.min(started.elapsed());
    }
    best
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let tables = tables();
    let columns = columns();
    let tag_policy = tag_policy(&tables);
    let assignments: usize = tag_policy.tagging.columns.values().map(BTreeMap::len).sum();
    let tagged = PolicySet::try_new_tagged(roles(), [], [], tag_grants(), tag_policy)
        .expect("a consistent tag policy");
    let baseline_grants = per_table_grants(&tagged, &tables, &columns);
    let baseline =
        PolicySet::try_new(roles(), [], [], baseline_grants.clone()).expect("a consistent policy");

    // Both policies give every role the same columns of every table.
    let mut reached = 0;
    for role in tagged.roles() {
        for table in &tables {
            let by_tags = tagged.effective_access(&role.name, table, &columns);
            let by_table = baseline.effective_access(&role.name, table, &columns);
            let names = |a: &Option<lakegate_policy::EffectiveAccess>| {
                a.as_ref()
                    .map(|a| a.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
            };
            assert_eq!(
                names(&by_tags),
                names(&by_table),
                "{} on {table}",
                role.name
            );
            reached += usize::from(by_tags.is_some());
        }
    }
    assert!(reached > 0, "the tag grants reach some tables");

    let rounds = if benching { 15 } else { 1 };
    let pairs = (ROLES * tables.len()) as f64;
    // Interleaved, so that both see the same machine.
    let mut by_tags = Duration::MAX;
    let mut by_table = Duration::MAX;
    for _ in 0..if benching { 3 } else { 1 } {
        by_tags = by_tags.min(pass(&tagged, &tables, &columns, rounds));
        by_table = by_table.min(pass(&baseline, &tables, &columns, rounds));
    }
    let per_pair = |d: Duration| d.as_secs_f64() * 1e9 / pairs;
    println!(
        "tag_resolution: {} tables, {} tags, {assignments} column tag assignments, {} tag grants \
         ({} per-table grants as the baseline), {reached} (role, table) pairs reached",
        tables.len(),
        KEYS * VALUES,
        ROLES * GRANTS_PER_ROLE,
        baseline_grants.len(),
    );
    println!(
        "  effective_access per (role, table): tags {:.0} ns, per-table grants {:.0} ns, ratio {:.2}",
        per_pair(by_tags),
        per_pair(by_table),
        by_tags.as_secs_f64() / by_table.as_secs_f64()
    );
}
