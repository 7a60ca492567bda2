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
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tonic::Status;

/// The default largest parameter set a client may bind, in Arrow IPC bytes
/// ([`crate::ServiceOptions::max_parameter_bytes`]).
pub const DEFAULT_MAX_PARAMETER_BYTES: usize = 1024 * 1024;

/// What a prepared-statement handle says.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PreparedHandle {
    /// The user who prepared it: nobody else may use it.
    pub user: String,
    /// The statement text.
    pub sql: String,
    /// Bound parameter values, as Arrow IPC (base64), when the client bound some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
}

/// The refusal of a parameter set larger than `limit` bytes.
pub(crate) fn too_many_parameter_bytes(size: usize, limit: usize) -> Status {
    Status::invalid_argument(format!(
        "bound parameters take {size} bytes or more, more than the {limit} allowed \
         (--max-parameter-bytes); bind fewer rows per execution"
    ))
}

/// Bound parameter values in the form tickets and handles carry them, at
/// most `limit` bytes of Arrow IPC.
pub(crate) fn encode_parameters(
    batches: &[RecordBatch],
    limit: usize,
) -> Result<Option<String>, Status> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let schema = first.schema();
    let batch = arrow::compute::concat_batches(&schema, batches)
        .map_err(|e| Status::invalid_argument(format!("inconsistent parameter batches: {e}")))?;
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &schema)
        .map_err(|e| Status::invalid_argument(format!("unsupported parameter types: {e}")))?;
    writer
        .write(&batch)
        .and_then(|()| writer.finish())
        .map_err(|e| Status::invalid_argument(format!("unsupported parameter values: {e}")))?;
    drop(writer);
    if bytes.len() > limit {
        return Err(too_many_parameter_bytes(bytes.len(), limit));
    }
    Ok(Some(STANDARD.encode(bytes)))
}

/// The parameter values a handle or ticket carries.
pub(crate) fn decode_parameters(encoded: &str) -> Result<RecordBatch, Status> {
    // Only our own sealed envelopes reach this, so a failure is our bug.
    let broken = |e: String| Status::internal(format!("stored parameters are unreadable: {e}"));
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
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.message().contains("bind fewer rows"), "{error}");
    }
}
