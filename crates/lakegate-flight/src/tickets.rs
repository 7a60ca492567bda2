//! What the server hands its callers and takes back: statement tickets,
//! prepared-statement handles and session cookies, each sealed with the
//! server's key (see `signing.rs`), bound to the user it was issued to, and
//! expiring.
//!
//! ```text
//! GetFlightInfo ─▶ ticket  = sealed {user, role, sql, database, parameters, part}   ticket TTL
//! Prepare       ─▶ handle  = sealed {user, sql, parameters}                         sign-in TTL
//! USE / SetSessionOptions ─▶ cookie = sealed {user, database}                      sign-in TTL
//! ```
//!
//! Opening one checks the seal, the expiry and the owner, and says which
//! went wrong as an error kind, never as text to be searched.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;

use crate::error::{CallError, CallResult};
use crate::signing::{EnvelopeError, EnvelopeKey};

/// The cookie holding a client's session.
pub(crate) const SESSION_COOKIE: &str = "lakegate_session";

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

/// What a statement ticket says: everything a server sharing the key needs
/// to run it, bound to the user and role it was issued to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatementTicket {
    pub(crate) user: String,
    pub(crate) role: String,
    pub(crate) sql: String,
    /// The current database when the ticket was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) database: Option<String>,
    /// Bound parameter values (prepared statements), as in [`PreparedHandle`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parameters: Option<String>,
    /// For one of several parallel endpoints: `[part, parts]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) part: Option<[usize; 2]>,
    /// The policy version the statement was planned under and a digest of
    /// the result schema it was given then: redeemed under a later version,
    /// the statement is planned again, and refused if its result no longer
    /// has that schema (the policy changed what the caller sees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) planned: Option<Planned>,
    /// The answer of an administration statement that changed the policy
    /// when the ticket was issued (Arrow IPC, base64): redeeming the ticket
    /// reads the answer, never runs the change again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) answer: Option<String>,
}

/// When and with what result schema a ticket's statement was planned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Planned {
    /// The policy version.
    pub(crate) version: i64,
    /// [`schema_digest`] of the result schema.
    pub(crate) schema: String,
}

/// A short digest of a result schema's columns (names, types,
/// nullability), to tell whether a later plan gives the same result.
pub(crate) fn schema_digest(schema: &arrow::datatypes::Schema) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for field in schema.fields() {
        hasher.update(format!(
            "{}\0{}\0{}\n",
            field.name(),
            field.data_type(),
            field.is_nullable()
        ));
    }
    hex_prefix(&hasher.finalize())
}

/// The first 12 bytes of `digest`, in hex.
fn hex_prefix(digest: &[u8]) -> String {
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// What a prepared-statement handle says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PreparedHandle {
    /// The user who prepared it: nobody else may use it.
    pub(crate) user: String,
    /// The statement text.
    pub(crate) sql: String,
    /// Bound parameter values, as Arrow IPC (base64), when the client bound some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parameters: Option<String>,
    /// The policy version it was prepared under, and [`column_digest`] of
    /// the result's columns then: executed under a later version that
    /// changed the columns the caller sees, it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) planned: Option<Planned>,
}

/// A short digest of a result's column names (binding parameters may
/// change their types, a policy change their presence).
pub(crate) fn column_digest(schema: &arrow::datatypes::Schema) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for field in schema.fields() {
        hasher.update(format!("{}\n", field.name()));
    }
    hex_prefix(&hasher.finalize())
}

/// Seals and opens tickets, handles and cookies with the server's key.
#[derive(Debug, Clone)]
pub(crate) struct Seals {
    key: Arc<EnvelopeKey>,
    /// How long a ticket stays redeemable.
    ticket_ttl: Duration,
    /// How long handles and session cookies last: as long as a sign-in.
    session_ttl: Duration,
}

impl Seals {
    pub(crate) fn new(key: Arc<EnvelopeKey>, ticket_ttl: Duration, session_ttl: Duration) -> Self {
        Self {
            key,
            ticket_ttl,
            session_ttl,
        }
    }

    /// A sealed statement ticket.
    pub(crate) fn ticket(&self, ticket: &StatementTicket) -> String {
        self.key.seal(ticket, self.ticket_ttl)
    }

    /// The statement ticket in `sealed`, when it is `user`'s.
    pub(crate) fn open_ticket(&self, sealed: &[u8], user: &str) -> CallResult<StatementTicket> {
        let ticket: StatementTicket = self.open(sealed, "ticket", "request a new one")?;
        if ticket.user != user {
            return Err(CallError::NotYours(
                "the ticket was issued to another user".into(),
            ));
        }
        Ok(ticket)
    }

    /// A sealed prepared-statement handle.
    pub(crate) fn handle(&self, handle: &PreparedHandle) -> String {
        self.key.seal(handle, self.session_ttl)
    }

    /// The prepared-statement handle in `sealed`, when it is `user`'s.
    pub(crate) fn open_handle(&self, sealed: &[u8], user: &str) -> CallResult<PreparedHandle> {
        let handle: PreparedHandle = self.open(sealed, "prepared statement", "prepare it again")?;
        if handle.user != user {
            return Err(CallError::NotYours(
                "the prepared statement belongs to another user".into(),
            ));
        }
        Ok(handle)
    }

    /// The `set-cookie` value keeping `database` current for `user`.
    pub(crate) fn session_cookie(&self, user: &str, database: Option<&str>) -> String {
        let state = SessionState {
            user: user.to_string(),
            database: database.map(str::to_string),
        };
        set_cookie(Some(&self.key.seal(&state, self.session_ttl)))
    }

    /// The current database a request's session cookie keeps for `user`: it
    /// counts only when sealed by this key, unexpired and `user`'s own.
    pub(crate) fn session_database(&self, metadata: &MetadataMap, user: &str) -> Option<String> {
        session_cookie(metadata)
            .and_then(|cookie| self.key.open::<SessionState>(&cookie).ok())
            .filter(|state| state.user == user)
            .and_then(|state| state.database)
    }

    fn open<T: serde::de::DeserializeOwned>(
        &self,
        sealed: &[u8],
        what: &'static str,
        remedy: &'static str,
    ) -> CallResult<T> {
        let text = std::str::from_utf8(sealed)
            .map_err(|_| CallError::InvalidRequest(format!("malformed {what}")))?;
        self.key.open(text).map_err(|e| match e {
            EnvelopeError::Expired => CallError::Expired(what, remedy),
            EnvelopeError::BadSignature | EnvelopeError::Malformed => {
                CallError::NotYours(format!("invalid {what}"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seals(ttl: Duration) -> Seals {
        Seals::new(Arc::new(EnvelopeKey::random()), ttl, ttl)
    }

    fn ticket(user: &str) -> StatementTicket {
        StatementTicket {
            user: user.into(),
            role: "r".into(),
            sql: "SELECT 1".into(),
            database: None,
            parameters: None,
            part: None,
            answer: None,
            planned: None,
        }
    }

    #[test]
    fn reads_the_session_cookie_among_others() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("cookie", "a=1; lakegate_session=lg1.x.y".parse().unwrap());
        assert_eq!(session_cookie(&metadata).as_deref(), Some("lg1.x.y"));
        metadata.insert("cookie", "a=1".parse().unwrap());
        assert_eq!(session_cookie(&metadata), None);
    }

    #[test]
    fn a_ticket_opens_for_its_owner_only() {
        let seals = seals(Duration::from_secs(60));
        let sealed = seals.ticket(&ticket("ann"));
        assert_eq!(
            seals.open_ticket(sealed.as_bytes(), "ann").unwrap().sql,
            "SELECT 1"
        );
        assert!(matches!(
            seals.open_ticket(sealed.as_bytes(), "bob"),
            Err(CallError::NotYours(_))
        ));
        assert!(matches!(
            self::seals(Duration::from_secs(60)).open_ticket(sealed.as_bytes(), "ann"),
            Err(CallError::NotYours(_))
        ));
    }

    #[test]
    fn an_expired_handle_says_so_by_its_kind() {
        let seals = seals(Duration::ZERO);
        let handle = PreparedHandle {
            user: "ann".into(),
            sql: "SELECT 1".into(),
            parameters: None,
            planned: None,
        };
        let sealed = seals.handle(&handle);
        std::thread::sleep(Duration::from_millis(1100));
        assert!(matches!(
            seals.open_handle(sealed.as_bytes(), "ann"),
            Err(CallError::Expired("prepared statement", _))
        ));
    }
}
