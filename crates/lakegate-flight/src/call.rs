//! A call's context, read from its request once, at the entry: its
//! `x-lakegate-*` headers, who signed in, the session cookie.
//!
//! ```text
//! request metadata ─▶ CallHeaders::read    role asked for, source identity, parallel endpoints
//!                                          (an x-lakegate-* header Lakegate does not know: refused)
//!                  ─▶ Authenticator        Identity
//!                  ─▶ Caller               travels in the request's extensions to the handler
//!                                          and with the audit event
//! ```

use tonic::metadata::MetadataMap;

use lakegate_identity::Principal;

use crate::audit::HandlerNotes;
use crate::auth::Identity;

use crate::error::{CallError, CallResult};

/// Call header choosing the runtime role.
pub const ROLE_HEADER: &str = "x-lakegate-role";
/// Call header naming the caller's source identity (a notebook profile, a
/// job), recorded with the call.
pub const SOURCE_IDENTITY_HEADER: &str = "x-lakegate-source-identity";
/// Call header asking for one endpoint per independent part of a result
/// (`true`), for clients that read endpoints in parallel (ADBC's
/// `adbc_execute_partitions`, Spark-style readers). Without it, one endpoint.
pub const PARALLEL_HEADER: &str = "x-lakegate-parallel";

/// Every `x-lakegate-*` header Lakegate reads.
const KNOWN_HEADERS: [&str; 3] = [ROLE_HEADER, SOURCE_IDENTITY_HEADER, PARALLEL_HEADER];

/// What a call's `x-lakegate-*` headers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CallHeaders {
    /// The runtime role asked for.
    pub(crate) role: Option<String>,
    /// Where the call comes from, in the client's words.
    pub(crate) source_identity: Option<String>,
    /// Whether the client reads endpoints in parallel.
    pub(crate) parallel: bool,
}

impl CallHeaders {
    /// Reads the headers. A header in Lakegate's namespace that it does not
    /// know is refused: a misspelt `x-lakegate-rol` would otherwise run the
    /// call under the default role without a word.
    pub(crate) fn read(metadata: &MetadataMap) -> CallResult<Self> {
        for key in metadata.keys() {
            let name = match key {
                tonic::metadata::KeyRef::Ascii(name) => name.as_str(),
                tonic::metadata::KeyRef::Binary(name) => name.as_str(),
            };
            if name.starts_with("x-lakegate-") && !KNOWN_HEADERS.contains(&name) {
                return Err(CallError::InvalidRequest(format!(
                    "unknown header '{name}': Lakegate reads {}",
                    KNOWN_HEADERS.join(", ")
                )));
            }
        }
        let parallel = header_value(metadata, PARALLEL_HEADER).is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        });
        Ok(Self {
            role: header_value(metadata, ROLE_HEADER),
            source_identity: header_value(metadata, SOURCE_IDENTITY_HEADER),
            parallel,
        })
    }
}

/// A header's value, when present and text.
pub(crate) fn header_value(metadata: &MetadataMap, name: &str) -> Option<String> {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The authenticated caller of one call, with what its request said.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Who signed in, how, and its source identity.
    pub(crate) identity: Identity,
    /// The call's headers.
    pub(crate) headers: CallHeaders,
    /// The current database of the client's session (its session cookie,
    /// when sealed by this server's key for this user).
    pub(crate) database: Option<String>,
    /// Where an administration statement tells the audit what it changed.
    pub(crate) notes: HandlerNotes,
}

impl Caller {
    /// The authenticated user.
    pub(crate) fn user(&self) -> &str {
        &self.identity.principal.user
    }

    /// The user with the groups its sign-in vouched for.
    pub(crate) fn principal(&self) -> &Principal {
        &self.identity.principal
    }

    /// The role asked for with `x-lakegate-role`, if any.
    pub(crate) fn requested_role(&self) -> Option<&str> {
        self.headers.role.as_deref()
    }
}

/// The caller the entry put in a request's extensions.
pub(crate) fn caller_of<T>(request: &tonic::Request<T>) -> CallResult<&Caller> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| CallError::Internal("a call reached its handler unauthenticated".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(headers: &[(&'static str, &str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn reads_the_known_headers() {
        let read = CallHeaders::read(&metadata(&[
            (ROLE_HEADER, "sales"),
            (PARALLEL_HEADER, "TRUE"),
            ("x-other", "ignored"),
        ]))
        .unwrap();
        assert_eq!(read.role.as_deref(), Some("sales"));
        assert!(read.parallel);
        assert_eq!(read.source_identity, None);
    }

    #[test]
    fn an_unknown_lakegate_header_is_refused_naming_the_known_ones() {
        let error = CallHeaders::read(&metadata(&[("x-lakegate-rol", "manager")])).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("x-lakegate-rol"), "{message}");
        assert!(message.contains(ROLE_HEADER), "{message}");
        assert!(matches!(error, CallError::InvalidRequest(_)));
    }
}
