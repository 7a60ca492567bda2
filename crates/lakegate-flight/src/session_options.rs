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

use arrow_flight::{Action, ActionType};
use lakegate_engine::QuerySession;
use prost::Message;

use crate::call::Caller;
use crate::error::{CallError, CallResult};
use crate::statements::Statements;
use crate::tickets::{Seals, set_cookie};

/// The action types handled here.
pub(crate) const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
/// See [`SET_SESSION_OPTIONS`].
pub(crate) const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
/// See [`SET_SESSION_OPTIONS`].
pub(crate) const CLOSE_SESSION: &str = "CloseSession";

/// The session option naming the catalog.
pub(crate) const CATALOG_OPTION: &str = "catalog";
/// The session option naming the current database.
pub(crate) const SCHEMA_OPTION: &str = "schema";

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

/// What a session action answers: its result message, and the session
/// cookie to set, when the action changed the session.
pub(crate) struct ActionAnswer {
    pub(crate) body: Vec<u8>,
    pub(crate) set_cookie: Option<String>,
}

/// The session actions: SetSessionOptions, GetSessionOptions, CloseSession.
pub(crate) fn session_action(
    statements: &Statements,
    seals: &Seals,
    catalog_name: &str,
    caller: &Caller,
    action: &Action,
) -> CallResult<ActionAnswer> {
    let (body, database) = match action.r#type.as_str() {
        SET_SESSION_OPTIONS => {
            let mut session = statements.session(caller)?;
            let current = caller.database.clone();
            let (result, database) =
                set_session_options(&mut session, catalog_name, current, &action.body)?;
            (result.encode_to_vec(), Some(database))
        }
        GET_SESSION_OPTIONS => {
            let session = statements.session(caller)?;
            let result = get_session_options(&session, catalog_name);
            (result.encode_to_vec(), None)
        }
        CLOSE_SESSION => {
            let result = CloseSessionResult {
                status: CloseSessionStatus::Closed.into(),
            };
            return Ok(ActionAnswer {
                body: result.encode_to_vec(),
                set_cookie: Some(set_cookie(None)),
            });
        }
        other => {
            return Err(CallError::InvalidRequest(format!(
                "unknown action '{other}': Lakegate answers {}, and Flight SQL's \
                 prepared-statement actions",
                [SET_SESSION_OPTIONS, GET_SESSION_OPTIONS, CLOSE_SESSION].join(", ")
            )));
        }
    };
    let set_cookie =
        database.map(|database| seals.session_cookie(caller.user(), database.as_deref()));
    Ok(ActionAnswer { body, set_cookie })
}

/// The session actions as ListActions describes them.
pub(crate) fn session_action_types() -> Vec<Result<ActionType, tonic::Status>> {
    let action = |name: &str, description: &str| {
        Ok(ActionType {
            r#type: name.to_string(),
            description: description.to_string(),
        })
    };
    vec![
        action(
            SET_SESSION_OPTIONS,
            "Set session options (catalog, schema).\nRequest Message: SetSessionOptionsRequest\nResponse Message: SetSessionOptionsResult",
        ),
        action(
            GET_SESSION_OPTIONS,
            "Get the session's options.\nRequest Message: GetSessionOptionsRequest\nResponse Message: GetSessionOptionsResult",
        ),
        action(
            CLOSE_SESSION,
            "Close the session.\nRequest Message: CloseSessionRequest\nResponse Message: CloseSessionResult",
        ),
    ]
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
