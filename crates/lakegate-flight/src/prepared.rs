//! Prepared statements, kept by the client: the handle is a sealed envelope
//! holding the creator and the SQL text, and, once the client binds
//! parameters, their values too.
//!
//! ```text
//! CreatePreparedStatement(sql) ─▶ plan under the role (denied → fails now)
//!   ◀─ handle = sealed {user, sql}, dataset schema, parameter schema
//! DoPut(handle, parameter batches)          (optional, repeatable)
//!   ◀─ new handle = sealed {user, sql, parameters}
//! GetFlightInfo(handle) ─▶ the caller must be the creator; planned again
//!   ◀─ ticket = sealed {user, role, sql, parameters}   under the calling role
//! ClosePreparedStatement(handle)            nothing to release
//! ```
//!
//! Nothing lives on the server, so any server sharing the key can continue a
//! statement another one prepared (Flight SQL's stateless prepared
//! statements: DoPut answers with the updated handle, which the ADBC and JDBC
//! drivers adopt). Bound values travel in the handle, so their size is
//! capped ([`crate::ServiceOptions::max_parameter_bytes`]); bulk data belongs in a table.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow_flight::FlightData;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::error::{CallError, CallResult};

/// The default largest parameter set a client may bind, in Arrow IPC bytes
/// ([`crate::ServiceOptions::max_parameter_bytes`]).
pub const DEFAULT_MAX_PARAMETER_BYTES: usize = 1024 * 1024;

/// The refusal of a parameter set larger than `limit` bytes.
fn too_many_parameter_bytes(size: usize, limit: usize) -> CallError {
    CallError::InvalidRequest(format!(
        "bound parameters take {size} bytes or more, more than the {limit} allowed \
         (--max-parameter-bytes); bind fewer rows per execution"
    ))
}

/// Bound parameter values in the form tickets and handles carry them, at
/// most `limit` bytes of Arrow IPC.
pub(crate) fn encode_parameters(
    batches: &[RecordBatch],
    limit: usize,
) -> CallResult<Option<String>> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let schema = first.schema();
    let batch = arrow::compute::concat_batches(&schema, batches)
        .map_err(|e| CallError::InvalidRequest(format!("inconsistent parameter batches: {e}")))?;
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &schema)
        .map_err(|e| CallError::InvalidRequest(format!("unsupported parameter types: {e}")))?;
    writer
        .write(&batch)
        .and_then(|()| writer.finish())
        .map_err(|e| CallError::InvalidRequest(format!("unsupported parameter values: {e}")))?;
    drop(writer);
    if bytes.len() > limit {
        return Err(too_many_parameter_bytes(bytes.len(), limit));
    }
    Ok(Some(STANDARD.encode(bytes)))
}

/// Reads the parameter batches a client binds with DoPut and encodes them
/// as handles carry them (see [`receive_batches`]).
pub(crate) async fn receive_parameters(
    data: impl Stream<Item = Result<FlightData, tonic::Status>> + Send + 'static,
    limit: usize,
) -> CallResult<Option<String>> {
    let (_, batches) = receive_batches(data, limit, too_many_parameter_bytes).await?;
    encode_parameters(&batches, limit)
}

/// Reads the record batches a client streams with DoPut, and their schema
/// (`None` when the stream held none). Counted as the messages arrive: a
/// client streaming more than `limit` bytes is stopped there with
/// `too_large(received, limit)`, not after all of it is held in memory.
pub(crate) async fn receive_batches(
    data: impl Stream<Item = Result<FlightData, tonic::Status>> + Send + 'static,
    limit: usize,
    too_large: fn(usize, usize) -> CallError,
) -> CallResult<(Option<SchemaRef>, Vec<RecordBatch>)> {
    let mut received = 0;
    let data = data.map_err(FlightError::from).and_then(move |data| {
        received += data.data_header.len() + data.data_body.len();
        let over = received > limit;
        async move {
            if over {
                let error = too_large(received, limit);
                Err(FlightError::ExternalError(Box::new(error)))
            } else {
                Ok(data)
            }
        }
    });
    let mut stream = FlightRecordBatchStream::new_from_flight_data(data);
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch.map_err(|e| match e {
            FlightError::ExternalError(error) => match error.downcast::<CallError>() {
                Ok(error) => *error,
                Err(other) => CallError::InvalidRequest(other.to_string()),
            },
            other => CallError::InvalidRequest(format!("cannot read the batches sent: {other}")),
        })?);
    }
    Ok((stream.schema().cloned(), batches))
}

/// The parameter values a handle or ticket carries.
pub(crate) fn decode_parameters(encoded: &str) -> CallResult<RecordBatch> {
    // Only our own sealed envelopes reach this, so a failure is our bug.
    let broken = |e: String| CallError::Internal(format!("stored parameters are unreadable: {e}"));
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| broken(e.to_string()))?;
    let mut reader =
        StreamReader::try_new(bytes.as_slice(), None).map_err(|e| broken(e.to_string()))?;
    let batch = reader
        .next()
        .ok_or_else(|| broken("no batch".into()))?
        .map_err(|e| broken(e.to_string()))?;
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("0", DataType::Int64, true),
            Field::new("1", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("v{i}")),
                )),
            ],
        )
        .unwrap()
    }

    #[test]
    fn parameters_round_trip_as_one_batch() {
        let encoded = encode_parameters(&[batch(2), batch(3)], DEFAULT_MAX_PARAMETER_BYTES)
            .unwrap()
            .unwrap();
        let decoded = decode_parameters(&encoded).unwrap();
        assert_eq!(decoded.num_rows(), 5);
        assert_eq!(decoded.schema(), batch(1).schema());
    }

    #[test]
    fn no_rows_bind_nothing() {
        assert!(
            encode_parameters(&[], DEFAULT_MAX_PARAMETER_BYTES)
                .unwrap()
                .is_none()
        );
        assert!(
            encode_parameters(&[batch(0)], DEFAULT_MAX_PARAMETER_BYTES)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn oversized_parameter_sets_are_refused() {
        let error = encode_parameters(&[batch(200_000)], DEFAULT_MAX_PARAMETER_BYTES).unwrap_err();
        assert!(matches!(error, CallError::InvalidRequest(_)));
        assert!(error.to_string().contains("bind fewer rows"), "{error}");
    }
}
