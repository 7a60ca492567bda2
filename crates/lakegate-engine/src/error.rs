//! The engine's error type. Variants say who is at fault, so that the Flight
//! layer can map each to one gRPC code in one place, and no variant carries a
//! policy's predicate text or a value the role may not see.

use std::fmt;

use datafusion::error::DataFusionError;
use lakegate_catalog::StorageError;
use lakegate_distributed::WorkerFailure;

/// A position in the SQL text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlPosition {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl fmt::Display for SqlPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a statement did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The caller's SQL is malformed or does not plan (unknown column, type
    /// error): the caller's fault.
    #[error("{message}{}", position.map(|p| format!(" (at {p})")).unwrap_or_default())]
    InvalidSql {
        /// What is wrong.
        message: String,
        /// Where, when known.
        position: Option<SqlPosition>,
    },
    /// The statement kind is not allowed through the SQL gate.
    #[error(
        "{statement} statements are not allowed: Lakegate runs read-only queries (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, USE, SHOW DATABASES, SHOW SCHEMAS, SHOW TABLES, SHOW COLUMNS)"
    )]
    StatementRefused {
        /// The refused statement kind, such as `CREATE EXTERNAL TABLE`.
        statement: String,
    },
    /// The role may not do this (or the object does not exist: the answer is
    /// the same, so that names cannot be probed).
    #[error("{0}")]
    PermissionDenied(String),
    /// The query failed while running, through the caller's own expressions
    /// (division by zero, a failing cast).
    #[error("{0}")]
    Execution(String),
    /// A policy could not be evaluated: the table is unreadable until an
    /// administrator fixes it (default deny). Details go to the server log only.
    #[error(
        "the access policy of table '{table}' could not be evaluated; the table is unreadable until an administrator fixes it"
    )]
    PolicyFailure {
        /// The table whose policy failed.
        table: String,
    },
    /// A storage location failed (credentials refused, throttled past its
    /// retries, unreachable): the operator's problem, often transient. The
    /// message names the location, never a secret, and carries no row data.
    #[error("{0}")]
    Storage(String),
    /// A worker could not be reached, refused the call or died while the
    /// query ran on it: the operator's problem, often transient. The
    /// message names the worker.
    #[error("{0}")]
    Worker(String),
    /// A resource limit was hit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The query was cancelled.
    #[error("query cancelled")]
    Cancelled,
    /// A bug in Lakegate.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Who is at fault for an error, in gRPC's terms: the code a Flight client
/// receives, and the audit log records, whichever way the statement came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The caller's statement is wrong.
    InvalidArgument,
    /// The role may not do it.
    PermissionDenied,
    /// A policy cannot be evaluated: the operator's to fix.
    FailedPrecondition,
    /// A limit was hit.
    ResourceExhausted,
    /// A storage location failed; trying again later may work.
    Unavailable,
    /// The query was cancelled.
    Cancelled,
    /// A bug in Lakegate.
    Internal,
}

impl ErrorCode {
    /// The code's protocol name, such as `PERMISSION_DENIED`.
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Cancelled => "CANCELLED",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Result with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A refusal Lakegate raises inside DataFusion (a table provider's scan, a
/// policy barrier), carried as a typed external error and found again by
/// type however DataFusion wraps it: never by its text, which a user's
/// literal or a stored value could imitate.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Refusal {
    /// The role may not read what the statement asks for.
    #[error("{0}")]
    PermissionDenied(String),
    /// The policy of `table` failed to evaluate (the cause is logged).
    #[error("the policy of table {0} failed")]
    PolicyFailure(String),
}

impl EngineError {
    /// Who is at fault: the one classification every way out uses.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidSql { .. } | Self::Execution(_) => ErrorCode::InvalidArgument,
            Self::StatementRefused { .. } | Self::PermissionDenied(_) => {
                ErrorCode::PermissionDenied
            }
            Self::PolicyFailure { .. } => ErrorCode::FailedPrecondition,
            Self::ResourceExhausted(_) => ErrorCode::ResourceExhausted,
            Self::Storage(_) | Self::Worker(_) => ErrorCode::Unavailable,
            Self::Cancelled => ErrorCode::Cancelled,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Classifies a DataFusion error raised while planning the caller's SQL.
    pub fn from_planning(error: DataFusionError) -> Self {
        if let Some(failure) = lakegate_failure(&error) {
            return failure;
        }
        let position = error
            .diagnostic()
            .and_then(|d| d.span)
            .map(|span| SqlPosition {
                line: span.start.line,
                column: span.start.column,
            });
        match error.find_root() {
            DataFusionError::SQL(parser_error, _) => {
                let message = parser_error.to_string();
                let position = position.or_else(|| parse_position(&message));
                Self::InvalidSql { message, position }
            }
            DataFusionError::ResourcesExhausted(message) => {
                Self::ResourceExhausted(message.clone())
            }
            DataFusionError::Internal(message) => Self::Internal(message.clone()),
            DataFusionError::NotImplemented(message) => Self::InvalidSql {
                message: format!("not supported: {message}"),
                position,
            },
            root => Self::InvalidSql {
                message: as_missing_column(strip_df_prefix(&root.to_string())),
                position,
            },
        }
    }

    /// Classifies a DataFusion error raised while running a query.
    pub fn from_execution(error: DataFusionError) -> Self {
        if let Some(failure) = lakegate_failure(&error) {
            return failure;
        }
        match error.find_root() {
            DataFusionError::ResourcesExhausted(message) => {
                Self::ResourceExhausted(message.clone())
            }
            DataFusionError::Internal(message) => Self::Internal(message.clone()),
            root => Self::Execution(strip_df_prefix(&root.to_string())),
        }
    }
}

/// The failures Lakegate raises itself, however DataFusion wrapped them,
/// found by type along the chain of causes: a storage location, a policy, a
/// permission.
fn lakegate_failure(error: &DataFusionError) -> Option<EngineError> {
    storage_failure(error).or_else(|| {
        Some(match find_cause::<Refusal>(error)? {
            Refusal::PermissionDenied(message) => EngineError::PermissionDenied(message.clone()),
            Refusal::PolicyFailure(table) => EngineError::PolicyFailure {
                table: table.clone(),
            },
        })
    })
}

/// The storage or worker failure somewhere in `error`'s chain of causes.
fn storage_failure(error: &DataFusionError) -> Option<EngineError> {
    find_cause::<StorageError>(error)
        .map(|storage| EngineError::Storage(storage.to_string()))
        .or_else(|| {
            find_cause::<WorkerFailure>(error).map(|worker| EngineError::Worker(worker.to_string()))
        })
}

/// The first error of type `E` in `error`'s chain of causes.
fn find_cause<E: std::error::Error + 'static>(error: &DataFusionError) -> Option<&E> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<E>() {
            return Some(found);
        }
        cause = current.source();
    }
    None
}

/// A DataFusion error for a permission refusal inside a provider callback.
pub(crate) fn permission_error(message: impl fmt::Display) -> DataFusionError {
    DataFusionError::External(Box::new(Refusal::PermissionDenied(message.to_string())))
}

/// A DataFusion error standing for a policy that failed on `table`; the cause
/// is logged, never returned to the caller.
pub(crate) fn policy_error(table: &impl fmt::Display, cause: &dyn fmt::Display) -> DataFusionError {
    log::error!("policy of table {table} failed: {cause}");
    DataFusionError::External(Box::new(Refusal::PolicyFailure(table.to_string())))
}

/// What an error raised beneath a policy barrier becomes for the caller: a
/// memory limit hit stays what it is (its message names operators and byte
/// counts, never values), and so does a storage failure (it names the
/// location and the store's complaint, never row data); anything else is a
/// policy failure (see [`policy_error`]).
pub(crate) fn barrier_error(table: &impl fmt::Display, error: DataFusionError) -> DataFusionError {
    if matches!(error.find_root(), DataFusionError::ResourcesExhausted(_))
        || storage_failure(&error).is_some()
    {
        return error;
    }
    policy_error(table, &error)
}

/// Finds `Line: N, Column: M` in a sqlparser message.
fn parse_position(message: &str) -> Option<SqlPosition> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(SqlPosition {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}

/// DataFusion prefixes messages with their kind ("Error during planning: ");
/// callers get the message itself.
/// DataFusion words a struct field it cannot find unlike a column it cannot
/// find; a nested field the role may not see (or that does not exist) gets
/// the answer a hidden column gets.
fn as_missing_column(message: String) -> String {
    match message
        .strip_prefix("Field ")
        .and_then(|rest| rest.strip_suffix(" not found in struct"))
    {
        Some(field) => format!("No field named {field}."),
        None => message,
    }
}

fn strip_df_prefix(text: &str) -> String {
    const PREFIXES: [&str; 6] = [
        "Error during planning: ",
        "Schema error: ",
        "Execution error: ",
        "Arrow error: ",
        "Optimizer rule ",
        "External error: ",
    ];
    let mut text = text.trim();
    for prefix in PREFIXES {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_read_from_parser_messages() {
        assert_eq!(
            parse_position("Expected: an expression, found: FROM at Line: 2, Column: 8"),
            Some(SqlPosition { line: 2, column: 8 })
        );
        assert_eq!(parse_position("no position"), None);
    }
}
