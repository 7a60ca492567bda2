//! The store's one error type.

/// Why the policy store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is not one the store understands.
    #[error("invalid store URL '{url}': {reason}")]
    Url {
        /// The URL as given, password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database refused or could not be reached.
    #[error("policy store: {0}")]
    Database(String),
    /// The store was written by a newer Lakegate, whose schema this one
    /// does not know.
    #[error(
        "the policy store's schema is version {found}, newer than this Lakegate knows ({known}); \
         run a newer Lakegate"
    )]
    Newer {
        /// The store's schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A stored entry does not read back as a catalog entry.
    #[error("policy store: the stored {kind} '{name}' is not readable: {reason}")]
    Corrupt {
        /// The kind of entry (`grant`, `user`, ...).
        kind: &'static str,
        /// Its name.
        name: String,
        /// Why it cannot be read.
        reason: String,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        // sqlx's errors name the server and the statement, never a bound
        // value; the URL (with its password) is not part of them.
        Self::Database(error.to_string())
    }
}
