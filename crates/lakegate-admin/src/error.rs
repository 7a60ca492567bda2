//! Why an administration statement was refused, each kind with the gRPC
//! code its caller gets. No message ever holds a password.

use lakegate_engine::{ErrorCode, SqlPosition};

/// Why an administration statement did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The statement is malformed, or names something that does not exist
    /// or exists already, or would leave the catalog invalid.
    #[error("{message}{}", position.map(|p| format!(" (at {p})")).unwrap_or_default())]
    Invalid {
        /// What is wrong.
        message: String,
        /// Where in the statement, when known.
        position: Option<SqlPosition>,
    },
    /// The caller's role lacks a privilege the statement needs.
    #[error("{0}")]
    PermissionDenied(String),
    /// The server cannot change its policy: it serves a declarative catalog.
    #[error(
        "this server serves a declarative catalog, which is read-only: change its files, or \
         start the server with --store to administer it by SQL"
    )]
    ReadOnly,
    /// The policy store failed.
    #[error("{0}")]
    Store(String),
}

impl AdminError {
    /// An invalid statement, from a sqlparser message (which ends with the
    /// position as " at Line: N, Column: M").
    pub(crate) fn invalid_from(message: String) -> Self {
        let (text, position) = match message.rfind(" at Line: ") {
            Some(at) => (message[..at].to_string(), parse_position(&message[at..])),
            None => (message.clone(), None),
        };
        let text = text
            .strip_prefix("sql parser error: ")
            .unwrap_or(&text)
            .to_string();
        Self::Invalid {
            message: text,
            position,
        }
    }

    /// An invalid statement without a position.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            position: None,
        }
    }

    /// Who is at fault, as a gRPC code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid { .. } => ErrorCode::InvalidArgument,
            Self::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Self::ReadOnly => ErrorCode::FailedPrecondition,
            Self::Store(_) => ErrorCode::Unavailable,
        }
    }
}

impl From<lakegate_store::StoreError> for AdminError {
    fn from(error: lakegate_store::StoreError) -> Self {
        Self::Store(error.to_string())
    }
}

/// `at Line: N, Column: M` as a position.
fn parse_position(text: &str) -> Option<SqlPosition> {
    let rest = text.trim().strip_prefix("at Line: ")?;
    let (line, column) = rest.split_once(", Column: ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some(SqlPosition {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}
