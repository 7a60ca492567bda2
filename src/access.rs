//! `lakegate access`: the engine's answer to what a role sees, printed.

use lakegate_policy::{CellValue, EffectiveAccess, RowFilter, TableName};

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
            let rule = match column.uniform_value(&access.row_filter) {
                Some(CellValue::Raw) => "visible".to_string(),
                Some(CellValue::Masked(mask)) => format!("masked: {}", mask.name),
                None => format!(
                    "cell-level: {}",
                    column
                        .branches
                        .iter()
                        .map(|b| {
                            let value = match &b.value {
                                CellValue::Raw => "raw".to_string(),
                                CellValue::Masked(mask) => mask.name.clone(),
                            };
                            match &b.when {
                                Some(p) => format!("{value} where grant {}", p.grant),
                                None => value,
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("; else ")
                ),
            };
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
