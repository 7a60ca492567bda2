//! Results as clients receive them: one schema per statement, and Arrow's
//! classic types.
//!
//! Inside the engine, text and binary columns are Arrow's view types
//! (`Utf8View`, `BinaryView`, [`reading_schema`]), which make filters,
//! joins and aggregations faster (TPC-H, classic types inside: 9 % slower).
//! Many clients handle only the classic types, `Utf8` and `Binary` (the
//! Flight SQL JDBC driver, older pyarrow, BI tools' ODBC bridges; pyarrow
//! 26's `Table.filter` has no kernel for `string_view`), so results leave
//! in them unless the engine is told to keep view types
//! ([`crate::EngineOptions::view_types`]). The conversion also compacts: a
//! view array decoded from Parquet points into whole decoded pages, which
//! the IPC encoder would send entire (docs/performance.md measures both).
//! Dictionary-encoded columns leave as their values, which is how the
//! Flight encoder sends them.
//!
//! A statement's schema is decided once, from its logical plan, and every
//! batch of its result is made to match it field for field: names, types,
//! nullability and metadata. The optimizer may learn more than the logical
//! plan says (`SELECT version()` folds into a literal that cannot be NULL),
//! and then the batches it produces say so; clients such as the ADBC driver
//! refuse a stream whose schema differs from the one they were promised.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::transform_schema_to_view;

use crate::error::{EngineError, Result};

/// The schema clients are told and get for a result whose engine schema is
/// `schema`: dictionary-encoded columns as their values (the Flight encoder
/// sends them so), and view types as classic ones unless `view_types`.
pub(crate) fn client_schema(schema: &Schema, view_types: bool) -> SchemaRef {
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| client_field(f, view_types))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn client_field(field: &FieldRef, view_types: bool) -> FieldRef {
    let sent = client_type(field.data_type(), view_types);
    if &sent == field.data_type() {
        Arc::clone(field)
    } else {
        Arc::new(field.as_ref().clone().with_data_type(sent))
    }
}

fn client_fields(fields: &Fields, view_types: bool) -> Fields {
    fields.iter().map(|f| client_field(f, view_types)).collect()
}

/// `data_type` as it is sent, at any depth (see [`client_schema`]).
fn client_type(data_type: &DataType, view_types: bool) -> DataType {
    let field = |f: &FieldRef| client_field(f, view_types);
    match data_type {
        DataType::Utf8View if !view_types => DataType::Utf8,
        DataType::BinaryView if !view_types => DataType::Binary,
        DataType::ListView(item) if !view_types => DataType::List(field(item)),
        DataType::LargeListView(item) if !view_types => DataType::LargeList(field(item)),
        DataType::List(item) => DataType::List(field(item)),
        DataType::ListView(item) => DataType::ListView(field(item)),
        DataType::LargeList(item) => DataType::LargeList(field(item)),
        DataType::LargeListView(item) => DataType::LargeListView(field(item)),
        DataType::FixedSizeList(item, size) => DataType::FixedSizeList(field(item), *size),
        DataType::Struct(fields) => DataType::Struct(client_fields(fields, view_types)),
        DataType::Map(entries, sorted) => DataType::Map(field(entries), *sorted),
        DataType::Dictionary(_, value) => client_type(value, view_types),
        DataType::RunEndEncoded(ends, values) => {
            DataType::RunEndEncoded(Arc::clone(ends), field(values))
        }
        other => other.clone(),
    }
}

/// `schema` in the classic types results leave in by default (`Utf8View`
/// as `Utf8`, `BinaryView` as `Binary`, at any depth): also the types
/// generated lakes are written in, as Spark, pyarrow and DuckDB write text.
pub fn classic_schema(schema: &Schema) -> SchemaRef {
    client_schema(schema, false)
}

/// The types a table's stored columns are read as, from the schema its
/// catalog entry read in a file's footer: text and binary as view types,
/// and field and schema metadata dropped, as DataFusion's own inference
/// gives them.
pub(crate) fn reading_schema(stored: &Schema) -> SchemaRef {
    let typed = transform_schema_to_view(stored);
    let fields: Vec<Field> = typed
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_metadata(Default::default()))
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` as `schema` says a batch of its result is: columns cast where
/// their type differs (view types, or a nested field's nullability), and
/// the schema's fields and metadata. A column with NULLs where the schema
/// promises none is an error, never a silent change.
pub(crate) fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    if batch.num_columns() != schema.fields().len() {
        return Err(EngineError::Internal(format!(
            "a result batch has {} columns where its schema has {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let rows = batch.num_rows();
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| conform_column(column, field))
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| EngineError::Internal(format!("a result batch does not match its schema: {e}")))
}

fn conform_column(column: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    if column.data_type() == field.data_type() {
        return Ok(Arc::clone(column));
    }
    arrow::compute::cast(column, field.data_type()).map_err(|e| {
        EngineError::Internal(format!(
            "column '{}' of a result ({}) cannot be sent as {}: {e}",
            field.name(),
            column.data_type(),
            field.data_type()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{Int64Array, StringViewArray};

    use super::*;

    fn view_batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringViewArray::from(vec!["a", "a much longer text value"])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn view_types_become_classic_at_any_depth() {
        let nested = DataType::Struct(Fields::from(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new("item", DataType::BinaryView, true))),
                true,
            ),
        ]));
        let schema = Schema::new(vec![Field::new("n", nested, true)]);
        let classic = client_schema(&schema, false);
        let DataType::Struct(fields) = classic.field(0).data_type() else {
            panic!()
        };
        assert_eq!(fields[0].data_type(), &DataType::Utf8);
        assert_eq!(
            fields[1].data_type(),
            &DataType::List(Arc::new(Field::new("item", DataType::Binary, true)))
        );
        assert_eq!(*client_schema(&schema, true), schema);
        let encoded = Schema::new(vec![Field::new(
            "d",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8View)),
            true,
        )]);
        assert_eq!(
            client_schema(&encoded, false).field(0).data_type(),
            &DataType::Utf8
        );
        assert_eq!(
            client_schema(&encoded, true).field(0).data_type(),
            &DataType::Utf8View
        );
    }

    #[test]
    fn batches_take_the_promised_schema() {
        let mut promised = (*client_schema(&view_batch().schema(), false)).clone();
        // The logical plan promised nullable columns with metadata.
        promised = Schema::new(
            promised
                .fields()
                .iter()
                .map(|f| {
                    f.as_ref()
                        .clone()
                        .with_nullable(true)
                        .with_metadata(HashMap::from([("k".into(), "v".into())]))
                })
                .collect::<Vec<_>>(),
        );
        let promised = Arc::new(promised);
        let sent = conform(view_batch(), &promised).unwrap();
        assert_eq!(sent.schema(), promised);
        assert_eq!(sent.column(1).data_type(), &DataType::Utf8);
    }

    #[test]
    fn nulls_where_none_were_promised_are_an_error() {
        let promised = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let with_null = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap();
        assert!(matches!(
            conform(with_null, &promised),
            Err(EngineError::Internal(_))
        ));
    }
}
