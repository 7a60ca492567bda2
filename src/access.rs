//! `lakegate access`: the engine's answer to what a role sees, printed.

use lakegate_policy::{EffectiveAccess, RowFilter, TableName};

pub fn print_access(
    tables: &[EffectiveAccess],
    role: &str,
    only: Option<&TableName>,
) -> Result<(), String> {
    if let (Some(name), true) = (only, tables.is_empty()) {
        println!("{name}: no access (no grant)");
    }
    for access in tables {
        let name = &access.table;
        let privilege = if access.can_select {
            "SELECT"
        } else {
            "DESCRIBE only"
        };
        println!("{name}: {privilege} (grants: {})", access.grants.join(", "));
        let hidden = &access.hidden_columns;
        for column in &access.columns {
            let rule = column.rule_text(&access.row_filter);
            println!("  {:<28} {rule}", column.name);
        }
        if !hidden.is_empty() {
            println!("  hidden columns: {}", hidden.join(", "));
        }
        match &access.row_filter {
            RowFilter::AllRows => println!("  rows: all"),
            RowFilter::AnyOf(predicates) => {
                println!("  rows: where any of");
                for p in predicates {
                    println!("    [{}] {}", p.grant, p.sql);
                }
            }
        }
    }
    if tables.is_empty() && only.is_none() {
        println!("role '{role}' has no access to any table");
    }
    Ok(())
}
