//! Client sessions: Flight's SetSessionOptions, GetSessionOptions and
//! CloseSession actions, and the current database a client chose with
//! `USE db` or the `schema` session option.
//!
//! The session lives in a cookie the client keeps, sealed like a token, so
//! that any server sharing the key continues it (no server-side store):
//!
//! ```text
//! SetSessionOptions {schema: "tpc"}  ─▶  set-cookie: lakegate_session=lg1.<{user, database}>
//! DoGet(USE tpc)                      ─▶  set-cookie: lakegate_session=...
//! later calls: cookie: lakegate_session=...  → the current database, if the
//!   cookie is the caller's own (a cookie of another user is ignored)
//! CloseSession                        ─▶  the cookie is cleared; status CLOSED
//! ```
//!
//! Options: `catalog` (only Lakegate's own catalog name is accepted) and
//! `schema` (a database the role may see). Clients send cookies when asked
//! to: the JDBC driver does by default; the ADBC driver with
//! `adbc.flight.sql.rpc.with_cookie_middleware=true`.
//!
//! arrow-flight 59 does not define these Flight.proto messages yet; they are
//! declared here with the same field numbers (Flight.proto, "Session
//! Options"), and carried as action bodies as the Flight spec says.

use std::collections::HashMap;

use lakegate_engine::QuerySession;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::error::{CallError, CallResult};

/// The action types handled here.
pub(crate) const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
/// See [`SET_SESSION_OPTIONS`].
pub(crate) const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
/// See [`SET_SESSION_OPTIONS`].
pub(crate) const CLOSE_SESSION: &str = "CloseSession";

/// The cookie holding a client's session.
pub(crate) const SESSION_COOKIE: &str = "lakegate_session";

/// The session option naming the catalog.
pub(crate) const CATALOG_OPTION: &str = "catalog";
/// The session option naming the current database.
pub(crate) const SCHEMA_OPTION: &str = "schema";

/// What the session cookie says.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SessionState {
    /// The user the session belongs to.
    pub user: String,
    /// The current database, when the client chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// The session cookie's value among a request's `cookie` headers.
pub(crate) fn session_cookie(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    metadata
        .get_all("cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// The `set-cookie` header value that stores `sealed`, or clears the cookie.
pub(crate) fn set_cookie(sealed: Option<&str>) -> String {
    match sealed {
        Some(value) => format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly"),
        None => format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly"),
    }
}

/// Flight.proto `SessionOptionValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionOptionValue {
    /// The value; none means "unset this option".
    #[prost(oneof = "OptionValue", tags = "1, 2, 3, 4, 5")]
    pub option_value: Option<OptionValue>,
}

/// Flight.proto `SessionOptionValue.option_value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OptionValue {
    /// A string.
    #[prost(string, tag = "1")]
    StringValue(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    /// An integer.
    #[prost(sfixed64, tag = "3")]
    Int64Value(i64),
    /// A float.
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    /// A list of strings.
    #[prost(message, tag = "5")]
    StringListValue(StringListValue),
}

/// Flight.proto `SessionOptionValue.StringListValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringListValue {
    /// The strings.
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

/// Flight.proto `SetSessionOptionsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsRequest {
    /// Options to set, by name.
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

/// Flight.proto `SetSessionOptionsResult.ErrorValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SessionOptionError {
    /// Unknown.
    Unspecified = 0,
    /// No such option.
    InvalidName = 1,
    /// The value is not acceptable.
    InvalidValue = 2,
    /// The option cannot be set.
    Error = 3,
}

/// Flight.proto `SetSessionOptionsResult.Error`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionError {
    /// Why.
    #[prost(enumeration = "SessionOptionError", tag = "1")]
    pub value: i32,
}

/// Flight.proto `SetSessionOptionsResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsResult {
    /// The options that were not set, by name.
    #[prost(map = "string, message", tag = "1")]
    pub errors: HashMap<String, SetSessionOptionError>,
}

/// Flight.proto `GetSessionOptionsResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetSessionOptionsResult {
    /// The session's options, by name.
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

/// Flight.proto `CloseSessionResult.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CloseSessionStatus {
    /// Unknown.
    Unspecified = 0,
    /// Closed.
    Closed = 1,
    /// Closing.
    Closing = 2,
    /// Cannot be closed.
    NotCloseable = 3,
}

/// Flight.proto `CloseSessionResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CloseSessionResult {
    /// The outcome.
    #[prost(enumeration = "CloseSessionStatus", tag = "1")]
    pub status: i32,
}

/// SetSessionOptions: `catalog` (`catalog_name` only) and `schema` (a
/// database the session's role may see), starting from the current
/// database `database`. Each refused option is reported, the others take
/// effect; the answer and the database now current.
pub(crate) fn set_session_options(
    session: &mut QuerySession,
    catalog_name: &str,
    mut database: Option<String>,
    body: &[u8],
) -> CallResult<(SetSessionOptionsResult, Option<String>)> {
    let request = SetSessionOptionsRequest::decode(body).map_err(|e| {
        CallError::InvalidRequest(format!("malformed SetSessionOptionsRequest: {e}"))
    })?;
    let mut errors = HashMap::new();
    let mut refuse = |name: &str, error: SessionOptionError| {
        let value = SetSessionOptionError {
            value: error.into(),
        };
        errors.insert(name.to_string(), value);
    };
    for (name, value) in &request.session_options {
        let text = match &value.option_value {
            Some(OptionValue::StringValue(text)) => Some(text.as_str()),
            None => None,
            Some(_) => {
                refuse(name, SessionOptionError::InvalidValue);
                continue;
            }
        };
        match (name.as_str(), text) {
            (CATALOG_OPTION, None) => {}
            (CATALOG_OPTION, Some(catalog)) if catalog == catalog_name => {}
            (SCHEMA_OPTION, None) => database = None,
            (SCHEMA_OPTION, Some(schema)) if session.use_database(schema).is_ok() => {
                database = Some(schema.to_string());
            }
            (CATALOG_OPTION | SCHEMA_OPTION, Some(_)) => {
                refuse(name, SessionOptionError::InvalidValue)
            }
            _ => refuse(name, SessionOptionError::InvalidName),
        }
    }
    Ok((SetSessionOptionsResult { errors }, database))
}

/// GetSessionOptions: the catalog and the session's current database.
pub(crate) fn get_session_options(
    session: &QuerySession,
    catalog_name: &str,
) -> GetSessionOptionsResult {
    let mut options = HashMap::from([(CATALOG_OPTION.to_string(), string_value(catalog_name))]);
    if let Some(database) = session.current_database() {
        options.insert(SCHEMA_OPTION.to_string(), string_value(database));
    }
    GetSessionOptionsResult {
        session_options: options,
    }
}

/// A string option value.
pub fn string_value(value: impl Into<String>) -> SessionOptionValue {
    SessionOptionValue {
        option_value: Some(OptionValue::StringValue(value.into())),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn reads_the_session_cookie_among_others() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("cookie", "a=1; lakegate_session=lg1.x.y".parse().unwrap());
        assert_eq!(session_cookie(&metadata).as_deref(), Some("lg1.x.y"));
        metadata.insert("cookie", "a=1".parse().unwrap());
        assert_eq!(session_cookie(&metadata), None);
    }

    #[test]
    fn session_messages_match_flight_proto_field_numbers() {
        // SetSessionOptionsRequest { session_options: {"schema": string_value "tpc"} }
        // encoded by hand: field 1 (map entry), key field 1, value field 2
        // (SessionOptionValue: string_value field 1).
        let entry = [&[0x0a, 6][..], b"schema", &[0x12, 5, 0x0a, 3][..], b"tpc"].concat();
        let bytes = [&[0x0a, entry.len() as u8][..], &entry].concat();
        let request = SetSessionOptionsRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(request.session_options["schema"], string_value("tpc"));
        assert_eq!(request.encode_to_vec(), bytes);
    }
}
