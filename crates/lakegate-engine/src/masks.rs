//! Built-in column masks as SQL over the stored column, and which column
//! types each mask fits.
//!
//! Every mask keeps the column's type (a masked text column is still text), so
//! that clients and cell-level `CASE` expressions see one type per column.

use arrow::datatypes::DataType;
use lakegate_policy::MaskKind;

/// The text a `redact` mask shows in place of every non-NULL value.
pub const REDACTED_TEXT: &str = "REDACTED";

/// Whether `data_type` is a text type.
pub fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_temporal(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
    )
}

/// Checks that a built-in mask fits a column of `data_type`; custom masks are
/// checked by planning their expression.
pub fn check_builtin_fits(kind: &MaskKind, data_type: &DataType) -> Result<(), String> {
    let fits = match kind {
        MaskKind::Redact | MaskKind::Hash | MaskKind::ShowLast4 | MaskKind::ShowFirst4 => {
            is_text(data_type)
        }
        MaskKind::YearOnly => is_temporal(data_type),
        MaskKind::Nullify | MaskKind::Custom { .. } => true,
    };
    if fits {
        Ok(())
    } else {
        let wanted = match kind {
            MaskKind::YearOnly => "a date or timestamp column",
            _ => "a text column",
        };
        Err(format!("needs {wanted}, not {data_type}"))
    }
}

/// The SQL computing the masked value of the stored value `value` (SQL
/// reading a column or a nested field; stored values in, masked value out;
/// NULL stays NULL). The result is cast back to the column's type by the
/// caller.
pub fn mask_sql(kind: &MaskKind, value: &str) -> String {
    let c = value;
    match kind {
        MaskKind::Redact => {
            format!("CASE WHEN {c} IS NULL THEN NULL ELSE '{REDACTED_TEXT}' END")
        }
        MaskKind::Nullify => "NULL".to_string(),
        MaskKind::Hash => format!("encode(sha256({c}), 'hex')"),
        // Values of four characters or fewer are hidden entirely: showing
        // "the last four" of a four-character value would show all of it.
        // NULL is tested first: `concat` skips NULL arguments, so the ELSE
        // branch would turn NULL into ''.
        MaskKind::ShowLast4 => format!(
            "CASE WHEN {c} IS NULL THEN NULL \
             WHEN character_length({c}) <= 4 THEN repeat('X', character_length({c})) \
             ELSE concat(repeat('X', character_length({c}) - 4), right({c}, 4)) END"
        ),
        MaskKind::ShowFirst4 => format!(
            "CASE WHEN {c} IS NULL THEN NULL \
             WHEN character_length({c}) <= 4 THEN repeat('X', character_length({c})) \
             ELSE concat(left({c}, 4), repeat('X', character_length({c}) - 4)) END"
        ),
        MaskKind::YearOnly => format!("date_trunc('year', {c})"),
        MaskKind::Custom { sql } => format!("({sql})"),
    }
}
