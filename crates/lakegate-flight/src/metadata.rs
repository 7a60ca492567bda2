//! Answers to Flight SQL's catalog RPCs that need more than arrow-flight's
//! builders: SQL type names of Arrow types (for the `ARROW:FLIGHT:SQL:*`
//! column metadata of GetTables, and for GetXdbcTypeInfo, which ODBC tools
//! read before anything else), and the empty but well-formed answers to the
//! key RPCs (Lakegate tables declare no keys); GetTables' answer, the tables
//! a role may describe.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{CommandGetTables, Nullable, Searchable, XdbcDataType};
use lakegate_engine::QuerySession;
use tonic::Response;

use crate::error::{CallError, CallResult};
use crate::running::{DoGetStream, one_batch};

/// One SQL type Lakegate returns: its name and its XDBC code.
struct SqlType {
    name: &'static str,
    xdbc: XdbcDataType,
    /// Digits (numbers) or characters (text) when fixed, for `column_size`.
    size: Option<i32>,
    literal_quote: Option<&'static str>,
}

const fn sql_type(
    name: &'static str,
    xdbc: XdbcDataType,
    size: Option<i32>,
    literal_quote: Option<&'static str>,
) -> SqlType {
    SqlType {
        name,
        xdbc,
        size,
        literal_quote,
    }
}

/// Every SQL type a Lakegate result can have, in XDBC order.
const SQL_TYPES: &[SqlType] = &[
    sql_type("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None),
    sql_type("TINYINT", XdbcDataType::XdbcTinyint, Some(3), None),
    sql_type("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), None),
    sql_type("INTEGER", XdbcDataType::XdbcInteger, Some(10), None),
    sql_type("BIGINT", XdbcDataType::XdbcBigint, Some(19), None),
    sql_type("REAL", XdbcDataType::XdbcReal, Some(7), None),
    sql_type("DOUBLE", XdbcDataType::XdbcDouble, Some(15), None),
    sql_type("DECIMAL", XdbcDataType::XdbcDecimal, Some(38), None),
    sql_type("VARCHAR", XdbcDataType::XdbcVarchar, None, Some("'")),
    sql_type("VARBINARY", XdbcDataType::XdbcVarbinary, None, Some("X'")),
    sql_type("DATE", XdbcDataType::XdbcDate, Some(10), Some("DATE '")),
    sql_type("TIME", XdbcDataType::XdbcTime, Some(18), Some("TIME '")),
    sql_type(
        "TIMESTAMP",
        XdbcDataType::XdbcTimestamp,
        Some(29),
        Some("TIMESTAMP '"),
    ),
    sql_type(
        "INTERVAL",
        XdbcDataType::XdbcInterval,
        None,
        Some("INTERVAL '"),
    ),
];

/// The SQL name Lakegate gives an Arrow type (what `ARROW:FLIGHT:SQL:TYPE_NAME`
/// says), or `None` for types without one (lists, structs, maps: their Arrow
/// form is shown instead).
pub(crate) fn sql_type_name(data_type: &DataType) -> Option<&'static str> {
    use DataType::*;
    Some(match data_type {
        Boolean => "BOOLEAN",
        Int8 | UInt8 => "TINYINT",
        Int16 | UInt16 => "SMALLINT",
        Int32 | UInt32 => "INTEGER",
        Int64 | UInt64 => "BIGINT",
        Float16 | Float32 => "REAL",
        Float64 => "DOUBLE",
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => "DECIMAL",
        Utf8 | LargeUtf8 | Utf8View => "VARCHAR",
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => "VARBINARY",
        Date32 | Date64 => "DATE",
        Time32(_) | Time64(_) => "TIME",
        Timestamp(..) => "TIMESTAMP",
        Interval(_) | Duration(_) => "INTERVAL",
        Dictionary(_, value) => return sql_type_name(value),
        _ => return None,
    })
}

/// `schema` with the Flight SQL column metadata of a table's columns added
/// to each field (its own metadata, such as `lakegate.mask`, is kept).
pub(crate) fn with_column_metadata(
    schema: &Schema,
    catalog: &str,
    database: &str,
    table: &str,
) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let mut metadata: HashMap<String, String> = field.metadata().clone();
            let mut put = |key: &str, value: String| {
                metadata.insert(format!("ARROW:FLIGHT:SQL:{key}"), value);
            };
            put("CATALOG_NAME", catalog.to_string());
            put("DB_SCHEMA_NAME", database.to_string());
            put("TABLE_NAME", table.to_string());
            let type_name = sql_type_name(field.data_type())
                .map(str::to_string)
                .unwrap_or_else(|| field.data_type().to_string());
            put("TYPE_NAME", type_name);
            if let Some((precision, scale)) = precision_and_scale(field.data_type()) {
                put("PRECISION", precision.to_string());
                put("SCALE", scale.to_string());
            }
            put("IS_AUTO_INCREMENT", "0".into());
            let text = matches!(
                field.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
            put("IS_CASE_SENSITIVE", u8::from(text).to_string());
            put("IS_READ_ONLY", "1".into());
            put("IS_SEARCHABLE", "1".into());
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

fn precision_and_scale(data_type: &DataType) -> Option<(u8, i8)> {
    match data_type {
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => Some((*p, *s)),
        _ => None,
    }
}

/// GetXdbcTypeInfo's answer: one row per SQL type Lakegate returns.
pub(crate) static XDBC_TYPE_INFO: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    for sql_type in SQL_TYPES {
        let suffix = sql_type.literal_quote.map(|_| "'".to_string());
        builder.append(XdbcTypeInfo {
            type_name: sql_type.name.to_string(),
            data_type: sql_type.xdbc,
            column_size: sql_type.size,
            literal_prefix: sql_type.literal_quote.map(str::to_string),
            literal_suffix: suffix,
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: sql_type.xdbc == XdbcDataType::XdbcVarchar,
            searchable: Searchable::Full,
            unsigned_attribute: matches!(
                sql_type.xdbc,
                XdbcDataType::XdbcTinyint
                    | XdbcDataType::XdbcSmallint
                    | XdbcDataType::XdbcInteger
                    | XdbcDataType::XdbcBigint
                    | XdbcDataType::XdbcReal
                    | XdbcDataType::XdbcDouble
                    | XdbcDataType::XdbcDecimal
            )
            .then_some(false),
            fixed_prec_scale: false,
            auto_increment: None,
            local_type_name: Some(sql_type.name.to_string()),
            minimum_scale: (sql_type.xdbc == XdbcDataType::XdbcDecimal).then_some(0),
            maximum_scale: (sql_type.xdbc == XdbcDataType::XdbcDecimal).then_some(38),
            sql_data_type: sql_type.xdbc,
            datetime_subcode: None,
            num_prec_radix: matches!(
                sql_type.xdbc,
                XdbcDataType::XdbcTinyint
                    | XdbcDataType::XdbcSmallint
                    | XdbcDataType::XdbcInteger
                    | XdbcDataType::XdbcBigint
                    | XdbcDataType::XdbcDecimal
            )
            .then_some(10),
            interval_precision: None,
        });
    }
    builder.build().expect("the XDBC type table is well formed")
});

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// The schema of GetPrimaryKeys' answer.
pub(crate) static PRIMARY_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("catalog_name", true),
        utf8("db_schema_name", true),
        utf8("table_name", false),
        utf8("column_name", false),
        utf8("key_name", true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

/// The schema of GetExportedKeys', GetImportedKeys' and GetCrossReference's answers.
pub(crate) static FOREIGN_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("pk_catalog_name", true),
        utf8("pk_db_schema_name", true),
        utf8("pk_table_name", false),
        utf8("pk_column_name", false),
        utf8("fk_catalog_name", true),
        utf8("fk_db_schema_name", true),
        utf8("fk_table_name", false),
        utf8("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        utf8("fk_key_name", true),
        utf8("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
});

/// An answer with no rows.
pub(crate) fn no_rows(schema: &SchemaRef) -> RecordBatch {
    RecordBatch::new_empty(Arc::clone(schema))
}

/// GetTables: the tables `session`'s role may describe, with the columns it
/// sees (masked columns with their masked types) when the schemas are
/// asked for.
pub(crate) async fn tables(
    session: &QuerySession,
    catalog: &str,
    query: CommandGetTables,
) -> CallResult<Response<DoGetStream>> {
    let mut builder = query.into_builder();
    for (database, table) in session.visible_tables() {
        let schema = if builder.include_schema() {
            let Some(schema) = session.table_schema(&database, &table).await? else {
                continue;
            };
            with_column_metadata(&schema, catalog, &database, &table)
        } else {
            Schema::empty()
        };
        builder
            .append(catalog, &database, &table, "TABLE", &schema)
            .map_err(|e| CallError::Internal(e.to_string()))?;
    }
    one_batch(builder.schema(), builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_type_is_in_the_xdbc_table() {
        let samples = [
            DataType::Boolean,
            DataType::Int32,
            DataType::Int64,
            DataType::Float64,
            DataType::Decimal128(7, 2),
            DataType::Utf8View,
            DataType::Date32,
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            DataType::Binary,
        ];
        for data_type in samples {
            let name = sql_type_name(&data_type).unwrap();
            assert!(SQL_TYPES.iter().any(|t| t.name == name), "{name}");
        }
        assert_eq!(
            XDBC_TYPE_INFO.record_batch(None).unwrap().num_rows(),
            SQL_TYPES.len()
        );
    }

    #[test]
    fn column_metadata_keeps_the_mask_name() {
        let field = Field::new("email", DataType::Utf8, true).with_metadata(HashMap::from([(
            "lakegate.mask".to_string(),
            "hash".to_string(),
        )]));
        let schema = with_column_metadata(&Schema::new(vec![field]), "lakegate", "tpc", "t");
        let metadata = schema.field(0).metadata();
        assert_eq!(metadata["lakegate.mask"], "hash");
        assert_eq!(metadata["ARROW:FLIGHT:SQL:TYPE_NAME"], "VARCHAR");
        assert_eq!(metadata["ARROW:FLIGHT:SQL:TABLE_NAME"], "t");
    }
}
