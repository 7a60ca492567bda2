//! A table's files at load time: where they are, and the schema the first
//! one's footer gives (Parquet) or the latest version of its log (Delta).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use url::Url;

use crate::catalog::KnownSchemas;
use crate::files::{PartitionColumnEntry, TableFormat};
use crate::storage::{StorageLocation, list_parquet_files, read_parquet_schema};

/// What reading a table's files at load time found.
pub(crate) struct ReadTable {
    pub(crate) url: Url,
    pub(crate) schema: SchemaRef,
}

/// Why a table's files could not be read at load time.
pub(crate) enum TableReadError {
    /// Its files cannot be reached or found: a storage problem, likely
    /// shared by every table of the location.
    Unreachable(String),
    /// Its declaration does not fit its files.
    Invalid(String),
}

/// Resolves a table's files and reads its schema from the first of them
/// (or from a Delta table's log). A schema in `known` (read by an earlier
/// load) is taken from there.
pub(crate) async fn read_table(
    location: &StorageLocation,
    path: &str,
    format: TableFormat,
    partition_columns: &[(String, DataType)],
    known: &KnownSchemas,
) -> Result<ReadTable, TableReadError> {
    use TableReadError::Invalid;
    let is_file = path.ends_with(".parquet");
    let misdeclared = match format {
        TableFormat::Parquet if is_file && !partition_columns.is_empty() => {
            Some("a table of one file has no partition columns")
        }
        TableFormat::Delta if is_file => {
            Some("a Delta table is a directory (holding _delta_log), not one file")
        }
        TableFormat::Delta if !partition_columns.is_empty() => {
            Some("a Delta table declares no partition columns: its log says how it is partitioned")
        }
        _ => None,
    };
    if let Some(message) = misdeclared {
        return Err(Invalid(message.into()));
    }
    // A directory must end in '/' so that DataFusion lists it as a prefix.
    let path = if is_file || path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    let url = location.listing_url(&path).map_err(Invalid)?;
    if let Some(schema) = known.get(
        location.url.as_str(),
        url.as_str(),
        format,
        partition_columns,
    ) {
        return Ok(ReadTable { url, schema });
    }
    let location_url = location.url_of(&path).map_err(Invalid)?;
    let schema = match format {
        TableFormat::Parquet => {
            parquet_schema(location, &path, &location_url, partition_columns).await?
        }
        TableFormat::Delta => delta_schema(location, &url, &location_url).await?,
    };
    Ok(ReadTable { url, schema })
}

/// The schema of the first Parquet file under `path`, then the partition
/// columns.
async fn parquet_schema(
    location: &StorageLocation,
    path: &str,
    location_url: &Url,
    partition_columns: &[(String, DataType)],
) -> Result<SchemaRef, TableReadError> {
    use TableReadError::{Invalid, Unreachable};
    let object_path = location.object_path(path).map_err(Invalid)?;
    let files = list_parquet_files(location.store.as_ref(), &object_path, location_url)
        .await
        .map_err(Unreachable)?;
    let Some(first) = files.first() else {
        return Err(Unreachable(format!("no Parquet files at {location_url}")));
    };
    let mut sample_file = location.registry_url();
    sample_file.set_path(&format!("/{}", first.as_ref()));
    let stored = read_parquet_schema(location.store.clone(), first, &sample_file)
        .await
        .map_err(Unreachable)?;
    let mut fields: Vec<Field> = stored.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (name, data_type) in partition_columns {
        if stored.field_with_name(name).is_ok() {
            return Err(Invalid(format!(
                "partition column '{name}' is also stored in the files"
            )));
        }
        fields.push(Field::new(name, data_type.clone(), false));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The latest version's schema of the Delta table DataFusion reads at `url`.
async fn delta_schema(
    location: &StorageLocation,
    url: &Url,
    location_url: &Url,
) -> Result<SchemaRef, TableReadError> {
    use TableReadError::{Invalid, Unreachable};
    let delta = location.delta_table(url).map_err(Invalid)?;
    match delta.is_table().await {
        Ok(true) => {}
        Ok(false) => {
            return Err(Unreachable(format!(
                "no Delta table at {location_url} (no commits in _delta_log)"
            )));
        }
        Err(e) => return Err(Unreachable(format!("{location_url}: {e}"))),
    }
    delta
        .schema()
        .await
        .map_err(|e| Unreachable(format!("cannot read the Delta log at {location_url}: {e}")))
}

/// The declared partition columns with their Arrow types.
pub(crate) fn partition_columns(
    entries: &[PartitionColumnEntry],
) -> Result<Vec<(String, DataType)>, String> {
    let mut columns: Vec<(String, DataType)> = Vec::new();
    for entry in entries {
        let data_type = match entry.data_type.to_ascii_lowercase().as_str() {
            "string" => DataType::Utf8,
            "int" => DataType::Int32,
            "bigint" => DataType::Int64,
            "date" => DataType::Date32,
            "boolean" => DataType::Boolean,
            other => {
                return Err(format!(
                    "partition column '{}': type '{other}' is not one of string, int, bigint, date, boolean",
                    entry.name
                ));
            }
        };
        if columns.iter().any(|(name, _)| name == &entry.name) {
            return Err(format!("partition column '{}' declared twice", entry.name));
        }
        columns.push((entry.name.clone(), data_type));
    }
    Ok(columns)
}
