//! Which version of a Delta table a query reads: the latest, a version
//! number, or the version current at a point in time. In SQL a version is
//! named after the table, as Databricks does: `orders@v3`,
//! `orders@2026-12-04T10:00:00Z` or `orders@20261204100000000`.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// A version of a Delta table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableVersion {
    /// The latest, read again at every scan.
    Latest,
    /// Version `n` of the log.
    Number(u64),
    /// The last version committed at or before a time.
    AsOf(DateTime<Utc>),
}

/// A table name whose `@` suffix names no version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' names no version of a table: write name@v<number> (orders@v3), \
     name@<RFC 3339 time> (orders@2026-12-04T10:00:00Z) or name@<yyyyMMddHHmmssSSS> in UTC"
)]
pub struct VersionError(pub String);

impl TableVersion {
    /// Splits `name@version` into the table's name and the version; a name
    /// without `@` is the latest version.
    pub fn split(name: &str) -> Result<(&str, TableVersion), VersionError> {
        let Some((table, suffix)) = name.rsplit_once('@') else {
            return Ok((name, TableVersion::Latest));
        };
        let error = || VersionError(name.to_string());
        if table.is_empty() {
            return Err(error());
        }
        if let Some(number) = suffix
            .strip_prefix('v')
            .or_else(|| suffix.strip_prefix('V'))
        {
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                return number
                    .parse()
                    .map(|n| (table, TableVersion::Number(n)))
                    .map_err(|_| error());
            }
            return Err(error());
        }
        if suffix.len() == 17 && suffix.bytes().all(|b| b.is_ascii_digit()) {
            let time =
                NaiveDateTime::parse_from_str(suffix, "%Y%m%d%H%M%S%3f").map_err(|_| error())?;
            return Ok((table, TableVersion::AsOf(Utc.from_utc_datetime(&time))));
        }
        DateTime::parse_from_rfc3339(suffix)
            .map(|time| (table, TableVersion::AsOf(time.with_timezone(&Utc))))
            .map_err(|_| error())
    }
}

impl std::fmt::Display for TableVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableVersion::Latest => write!(f, "the latest version"),
            TableVersion::Number(n) => write!(f, "version {n}"),
            TableVersion::AsOf(time) => write!(f, "the version as of {}", time.to_rfc3339()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_table_and_version() {
        assert_eq!(
            TableVersion::split("orders").unwrap(),
            ("orders", TableVersion::Latest)
        );
        assert_eq!(
            TableVersion::split("orders@v3").unwrap(),
            ("orders", TableVersion::Number(3))
        );
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        assert_eq!(
            TableVersion::split("orders@2026-12-04T10:00:00Z").unwrap(),
            ("orders", TableVersion::AsOf(at))
        );
        assert_eq!(
            TableVersion::split("orders@2026-12-04T11:00:00+01:00").unwrap(),
            ("orders", TableVersion::AsOf(at))
        );
        assert_eq!(
            TableVersion::split("orders@20261204100000000").unwrap(),
            ("orders", TableVersion::AsOf(at))
        );
    }

    #[test]
    fn a_suffix_naming_no_version_is_an_error() {
        for name in [
            "orders@",
            "@v3",
            "orders@v",
            "orders@v-1",
            "orders@vx",
            "orders@yesterday",
            "orders@2026-13-01T00:00:00Z",
            "orders@v99999999999999999999999",
        ] {
            assert!(TableVersion::split(name).is_err(), "{name}");
        }
    }
}
