//! The Flight service's error type, and the one place it becomes a gRPC
//! status: the code says who is at fault, and the server log gets what an
//! operator needs (a bug at error level, everything else at debug level).
//! No handler builds a `Status` itself, and no error kind is recovered from
//! a message: each is a variant.

use std::time::Duration;

use lakegate_admin::AdminError;
use lakegate_engine::{EngineError, ErrorCode};
use tonic::Status;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The engine refused or failed the statement.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An administration statement was refused or failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The policy store cannot be reached, so the policy in force cannot be
    /// confirmed: the call is refused rather than served on a policy that may
    /// have been revoked.
    #[error("the policy store cannot be reached: {0}")]
    PolicyUnavailable(String),
    /// The call carries no credentials.
    #[error(
        "authentication required: send Basic credentials or a bearer token \
         (or a client certificate, where the server accepts them)"
    )]
    AuthenticationRequired,
    /// The credentials are wrong, unknown, expired or tampered with: the same
    /// answer for each, so that none can be told from the others.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A token used with another source identity than the one bound into
    /// it at sign-in.
    #[error(
        "the source identity is bound at sign-in: this token was issued for another one; \
         sign in again to use a different source identity"
    )]
    SourceIdentityBound,
    /// Too many failed sign-ins for this user from this peer.
    #[error("too many failed sign-in attempts; retry in {} s", .0.as_secs().max(1))]
    SignInThrottled(Duration),
    /// The request itself is malformed or asks for something that does not
    /// exist (an unknown header, action, descriptor form).
    #[error("{0}")]
    InvalidRequest(String),
    /// A ticket, handle or session belongs to someone else, or was not made
    /// by this server's key.
    #[error("{0}")]
    NotYours(String),
    /// A ticket or handle has expired.
    #[error("the {0} has expired; {1}")]
    Expired(&'static str, &'static str),
    /// The caller runs as many queries as it may.
    #[error("{0}")]
    TooManyQueries(String),
    /// A ticket no longer matches the statement's plan.
    #[error("{0}")]
    Stale(String),
    /// The query ran past its time limit.
    #[error("{0}")]
    Timeout(String),
    /// The server is shutting down.
    #[error("the server is shutting down; the query was cancelled")]
    ShuttingDown,
    /// What Lakegate does not do (replacing a table, temporary tables).
    #[error("{0}")]
    Refused(String),
    /// An RPC Lakegate does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// A bug in Lakegate.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with [`CallError`].
pub type CallResult<T> = Result<T, CallError>;

impl From<CallError> for Status {
    fn from(error: CallError) -> Self {
        let message = error.to_string();
        if !matches!(
            error,
            CallError::Engine(_) | CallError::Admin(_) | CallError::Internal(_)
        ) {
            log::debug!("call failed: {message}");
        }
        match &error {
            CallError::Engine(engine) => engine_status(engine),
            CallError::Admin(admin) => code_status(admin.code(), message),
            CallError::PolicyUnavailable(_) => Status::unavailable(message),
            CallError::AuthenticationRequired | CallError::InvalidCredentials => {
                Status::unauthenticated(message)
            }
            CallError::SignInThrottled(_) | CallError::TooManyQueries(_) => {
                Status::resource_exhausted(message)
            }
            CallError::InvalidRequest(_) => Status::invalid_argument(message),
            CallError::NotYours(_)
            | CallError::Expired(..)
            | CallError::Refused(_)
            | CallError::SourceIdentityBound => Status::permission_denied(message),
            CallError::Stale(_) => Status::failed_precondition(message),
            CallError::Unsupported(_) => Status::unimplemented(message),
            CallError::Timeout(_) => Status::deadline_exceeded(message),
            CallError::ShuttingDown => Status::unavailable(message),
            CallError::Internal(_) => {
                log::error!("{message}");
                Status::internal(message)
            }
        }
    }
}

/// The gRPC status for an engine error, by the engine's own classification.
fn engine_status(error: &EngineError) -> Status {
    code_status(error.code(), error.to_string())
}

/// The gRPC status of an error classified as `code`.
fn code_status(code: ErrorCode, message: String) -> Status {
    match code {
        ErrorCode::InvalidArgument => Status::invalid_argument(message),
        ErrorCode::PermissionDenied => Status::permission_denied(message),
        ErrorCode::FailedPrecondition => Status::failed_precondition(message),
        ErrorCode::ResourceExhausted => Status::resource_exhausted(message),
        ErrorCode::Unavailable => Status::unavailable(message),
        ErrorCode::Cancelled => Status::cancelled(message),
        ErrorCode::Internal => {
            log::error!("internal error: {message}");
            Status::internal(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn each_kind_has_its_code() {
        let code = |e: CallError| Status::from(e).code();
        assert_eq!(code(CallError::InvalidCredentials), Code::Unauthenticated);
        assert_eq!(
            code(CallError::Expired("ticket", "request a new one")),
            Code::PermissionDenied
        );
        assert_eq!(
            code(CallError::InvalidRequest("x".into())),
            Code::InvalidArgument
        );
        assert_eq!(
            code(CallError::Engine(EngineError::Storage("s3".into()))),
            Code::Unavailable
        );
        assert_eq!(code(CallError::ShuttingDown), Code::Unavailable);
    }
}
