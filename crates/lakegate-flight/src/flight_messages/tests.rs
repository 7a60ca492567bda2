//! The messages against arrow-flight's own encoder: the same batches come
//! back, with the same bodies, byte for byte, from the batches' own memory.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, DictionaryArray, Int32Array, Int64Array, ListArray,
    StringArray, StringViewArray, StructArray,
};
use arrow::datatypes::{DataType, Field, Int32Type};
use arrow_flight::decode::FlightRecordBatchStream;
use futures::TryStreamExt;

use super::*;

/// A batch of most kinds of column, with nulls, `rows` rows.
fn mixed(rows: usize) -> RecordBatch {
    let n = rows as i64;
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "id",
            Arc::new(Int64Array::from_iter(
                (0..n).map(|i| (i % 7 != 0).then_some(i)),
            )),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 3 == 0)))),
        ),
        (
            "name",
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 5 != 0).then(|| format!("name {i}"))),
            )),
        ),
        (
            "view",
            Arc::new(StringViewArray::from_iter(
                (0..n).map(|i| Some(format!("a longer text than twelve bytes {i}"))),
            )),
        ),
        (
            "price",
            Arc::new(
                Decimal128Array::from_iter_values((0..n).map(i128::from))
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
        ),
        (
            "tags",
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
                (0..n).map(|i| (i % 4 != 0).then(|| vec![Some(i as i32), None])),
            )),
        ),
        (
            "pair",
            Arc::new(StructArray::from(vec![(
                Arc::new(Field::new("x", DataType::Int32, true)),
                Arc::new(Int32Array::from_iter((0..n).map(|i| Some(i as i32)))) as ArrayRef,
            )])),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

async fn messages(schema: SchemaRef, batches: Vec<RecordBatch>) -> Vec<FlightMessage> {
    encode_messages(schema, stream::iter(batches.into_iter().map(Ok)))
        .try_collect()
        .await
        .unwrap()
}

async fn decoded(messages: Vec<FlightMessage>) -> Vec<RecordBatch> {
    let data = stream::iter(
        messages
            .into_iter()
            .map(|m| Ok::<_, FlightError>(m.into_flight_data())),
    );
    FlightRecordBatchStream::new_from_flight_data(data)
        .try_collect()
        .await
        .unwrap()
}

/// arrow-flight's encoding of the same batches, as whole messages.
async fn by_arrow_flight_encoder(schema: SchemaRef, batches: Vec<RecordBatch>) -> Vec<FlightData> {
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::iter(batches.into_iter().map(Ok)))
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn batches_come_back_as_sent_with_arrow_flights_bodies() {
    // A small batch, a sliced one, an empty one, and one large enough to
    // be split into several messages.
    let large = mixed(60_000);
    let batches = vec![mixed(10), large.slice(5, 1_000), mixed(0), large];
    let schema = batches[0].schema();
    let ours = messages(Arc::clone(&schema), batches.clone()).await;
    let theirs = by_arrow_flight_encoder(Arc::clone(&schema), batches.clone()).await;
    assert_eq!(ours.len(), theirs.len());
    assert!(ours.len() > batches.len() + 1, "the large batch was split");
    for (i, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            ours.clone().into_flight_data().data_body,
            theirs.data_body,
            "message {i}"
        );
    }
    let back = decoded(ours).await;
    assert_eq!(
        arrow::compute::concat_batches(&schema, &back).unwrap(),
        arrow::compute::concat_batches(&schema, &batches).unwrap()
    );
}

#[tokio::test]
async fn a_large_column_is_sent_from_its_own_memory() {
    let values = Int64Array::from_iter_values(0..200_000);
    let address = values.values().inner().as_ptr();
    let batch = RecordBatch::try_from_iter([("v", Arc::new(values) as ArrayRef)]).unwrap();
    let sent = messages(batch.schema(), vec![batch]).await;
    let parts: Vec<&Bytes> = sent.iter().flat_map(|m| &m.body).collect();
    assert!(
        parts.iter().any(|p| p.as_ptr() == address),
        "the values buffer itself is a part of a body"
    );
}

#[tokio::test]
async fn an_empty_stream_still_sends_its_schema() {
    let schema = mixed(1).schema();
    let sent = messages(Arc::clone(&schema), vec![]).await;
    assert_eq!(sent.len(), 1);
    let header = root_as_message(&sent[0].data.data_header).unwrap();
    assert_eq!(header.header_type(), MessageHeader::Schema);
}

#[tokio::test]
async fn dictionaries_go_through_arrow_flights_encoder() {
    let keys = Int32Array::from(vec![0, 1, 0]);
    let values = Arc::new(StringArray::from(vec!["a", "b"]));
    let column = DictionaryArray::<Int32Type>::try_new(keys, values).unwrap();
    let batch = RecordBatch::try_from_iter([("d", Arc::new(column) as ArrayRef)]).unwrap();
    let back = decoded(messages(batch.schema(), vec![batch]).await).await;
    // Sent as its values, as arrow-flight sends dictionaries.
    let expected = StringArray::from(vec!["a", "b", "a"]);
    assert_eq!(
        back[0].column(0).as_ref(),
        &expected as &dyn arrow::array::Array
    );
}

#[tokio::test]
async fn an_error_ends_the_stream_with_its_status() {
    let batch = mixed(3);
    let schema = batch.schema();
    let batches = stream::iter([Ok(batch), Err(Status::cancelled("stopped"))]);
    let sent: Vec<_> = encode_messages(schema, batches).collect().await;
    assert!(sent[..sent.len() - 1].iter().all(Result::is_ok));
    assert_eq!(
        sent.last().unwrap().as_ref().unwrap_err().message(),
        "stopped"
    );
}
