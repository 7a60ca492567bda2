//! Micro-benchmark: policy resolution, the pure decisions the engine asks of
//! a catalog's policy on every session and table reference, in catalogs of
//! 10, 1,000 and 10,000 grants.
//!
//! Two shapes of catalog per size:
//! * `spread`: grants spread over roles, 10 per role (the usual shape);
//! * `one role`: a single role holding every grant (the worst case: a
//!   role's grants are scanned for each decision).
//!
//! Every grant has a row filter, a mask and a column list, and every fourth
//! targets the benchmarked table, so a resolution unions several grants.
//!
//! Run: `cargo bench -p lakegate-policy --bench resolution` (criterion;
//! reports in `$CARGO_TARGET_DIR/criterion`). Under `cargo test` each case
//! runs once.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lakegate_policy::{
    ColumnMask, ColumnSelection, Grant, PolicySet, Principal, Privilege, Resource, Role, TableName,
    User,
};

const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn columns() -> Vec<String> {
    ["id", "name", "email", "region", "amount", "note"]
        .map(String::from)
        .to_vec()
}

/// A catalog of `grants` grants over `grants / 4` tables (at least one), held
/// by `roles` roles; user `u` may assume every role.
fn policy(grants: usize, roles: usize) -> PolicySet {
    let tables = (grants / 4).max(1);
    let role_names: Vec<String> = (0..roles).map(|r| format!("r{r:05}")).collect();
    let grants = (0..grants).map(|g| {
        let role = &role_names[g % roles];
        Grant {
            name: format!("g{g:05}"),
            role: role.clone(),
            resource: Resource::Table(TableName::new("db", format!("t{:05}", (g / 4) % tables))),
            privileges: vec![Privilege::Select],
            grantable: false,
            columns: if g % 2 == 0 {
                ColumnSelection::Exclude(vec!["note".into()])
            } else {
                ColumnSelection::Include(vec!["id".into(), "region".into(), "amount".into()])
            },
            row_filter: Some(format!("region = 'R{}'", g % 7)),
            masks: BTreeMap::from([(
                "email".to_string(),
                ColumnMask::builtin("hash").expect("a built-in mask"),
            )]),
        }
    });
    let user = User {
        name: "u".into(),
        groups: Vec::new(),
        may_assume: role_names.clone(),
        default_role: role_names.first().cloned(),
    };
    let roles = role_names.iter().map(|name| Role {
        name: name.clone(),
        description: String::new(),
    });
    PolicySet::try_new(roles, [user], [], grants).expect("a consistent policy")
}

fn resolution(c: &mut Criterion) {
    let table = TableName::new("db", "t00000");
    let columns = columns();
    let mut group = c.benchmark_group("resolution");
    for grants in SIZES {
        for (shape, roles) in [("spread", (grants / 10).max(1)), ("one role", 1)] {
            let policy = policy(grants, roles);
            let role = "r00000";
            let case = format!("{shape}, {grants} grants");
            group.bench_function(BenchmarkId::new("effective_access", &case), |b| {
                b.iter(|| {
                    let access = policy.effective_access(black_box(role), &table, &columns);
                    black_box(access.expect("the role may read the table"))
                })
            });
            let user = Principal::local("u");
            group.bench_function(BenchmarkId::new("runtime_role", &case), |b| {
                b.iter(|| black_box(policy.runtime_role(&user, Some(black_box(role))).unwrap()))
            });
            group.bench_function(BenchmarkId::new("may_describe", &case), |b| {
                b.iter(|| black_box(policy.may_describe(black_box(role), &table, &columns)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, resolution);
criterion_main!(benches);
