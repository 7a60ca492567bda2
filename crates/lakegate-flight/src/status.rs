//! The one place where engine errors become gRPC statuses: the code says who
//! is at fault, the message never carries a policy's predicate (the engine's
//! errors are already written that way).

use lakegate_engine::EngineError;
use tonic::Status;

/// The gRPC status for an engine error.
pub fn status_of(error: EngineError) -> Status {
    match &error {
        EngineError::InvalidSql { .. } | EngineError::Execution(_) => {
            Status::invalid_argument(error.to_string())
        }
        EngineError::StatementRefused { .. } | EngineError::PermissionDenied(_) => {
            Status::permission_denied(error.to_string())
        }
        // A policy that cannot be evaluated is an operator's problem, not the
        // caller's and not a bug: the table stays unreadable until fixed.
        EngineError::PolicyFailure { .. } => Status::failed_precondition(error.to_string()),
        EngineError::ResourceExhausted(_) => Status::resource_exhausted(error.to_string()),
        // A storage location failing is neither the caller's fault nor a bug;
        // UNAVAILABLE tells clients that trying again later may work.
        EngineError::Storage(_) => Status::unavailable(error.to_string()),
        EngineError::Cancelled => Status::cancelled(error.to_string()),
        EngineError::Internal(_) => {
            log::error!("internal error: {error}");
            Status::internal(error.to_string())
        }
    }
}

/// The answer to every authentication failure: the same for an unknown user,
/// a wrong password, and an expired or tampered token.
pub fn unauthenticated() -> Status {
    Status::unauthenticated("invalid credentials")
}
