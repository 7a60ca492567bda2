//! The `CREATE TABLE ... AS` statement as Lakegate runs it: `CREATE TABLE
//! [IF NOT EXISTS] db.t [STORED AS PARQUET|DELTA] [LOCATION 'url'] AS
//! SELECT ...`, told apart from other statements, every other clause
//! refused by name. sqlparser knows only Hive's file formats, so `STORED AS
//! DELTA` is read from the statement's tokens before it is parsed.

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;
use datafusion::sql::sqlparser::ast::{
    CreateTable, FileFormat, HiveFormat, HiveIOFormat, Query, Statement,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use lakegate_catalog::TableFormat;
use lakegate_policy::TableName;

use crate::error::{EngineError, Result};
use crate::parse::parse_one;
use crate::write_refusals::table_name;

/// What a `CREATE TABLE ... AS` asks for.
pub(crate) struct CreateTableAs {
    pub(super) table: TableName,
    pub(super) format: TableFormat,
    pub(super) location: Option<String>,
    pub(super) if_not_exists: bool,
    pub(super) query: Box<Query>,
}

impl CreateTableAs {
    /// The database the table is created in.
    pub(crate) fn database(&self) -> &str {
        &self.table.database
    }
}

/// Whether `sql` is a `CREATE TABLE ... AS` (without parsing it when its
/// first word is plainly something else).
pub(crate) fn is_create_table_as(sql: &str, max_bytes: usize) -> bool {
    let text = sql.trim_start();
    let first_word_is_create = text
        .get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("create"));
    (first_word_is_create || text.starts_with("--") || text.starts_with("/*"))
        && matches!(
            parse_create(sql, max_bytes, None),
            Ok(Some(_)) | Err(ParsedCreate::Refused(_))
        )
}

/// Why a text is not a runnable `CREATE TABLE ... AS`.
pub(crate) enum ParsedCreate {
    /// It is not one at all.
    Other(EngineError),
    /// It is one, of a form Lakegate refuses.
    Refused(EngineError),
}

/// `sql` as a `CREATE TABLE ... AS`, `Ok(None)` when it is another
/// statement. `STORED AS DELTA` is read by Lakegate: sqlparser knows only
/// Hive's file formats, so the word is swapped for PARQUET before parsing
/// (in the statement's head only: never in its query).
pub(crate) fn parse_create(
    sql: &str,
    max_bytes: usize,
    current_database: Option<&str>,
) -> std::result::Result<Option<CreateTableAs>, ParsedCreate> {
    let (text, delta) = swap_stored_as_delta(sql);
    let statement = parse_one(&text, max_bytes).map_err(ParsedCreate::Other)?;
    let DFStatement::Statement(statement) = statement else {
        return Ok(None);
    };
    let Statement::CreateTable(create) = *statement else {
        return Ok(None);
    };
    if create.query.is_none() {
        return Ok(None);
    }
    let refused = |e| ParsedCreate::Refused(e);
    let (create, hive, query) = plain_create(create).map_err(refused)?;
    let format = match hive.as_ref().and_then(|h| h.storage.as_ref()) {
        None => TableFormat::Parquet,
        Some(HiveIOFormat::FileFormat {
            format: FileFormat::PARQUET,
        }) if delta => TableFormat::Delta,
        Some(HiveIOFormat::FileFormat {
            format: FileFormat::PARQUET,
        }) => TableFormat::Parquet,
        Some(other) => {
            return Err(refused(invalid(format!(
                "tables are created STORED AS PARQUET or DELTA, not {other:?}"
            ))));
        }
    };
    let table = table_name(&create.name, current_database).map_err(refused)?;
    check_new_name(&table).map_err(refused)?;
    Ok(Some(CreateTableAs {
        table,
        format,
        location: hive.and_then(|h| h.location),
        if_not_exists: create.if_not_exists,
        query,
    }))
}

/// The parts of `create` Lakegate runs, or the refusal of any other clause.
fn plain_create(mut create: CreateTable) -> Result<(CreateTable, Option<HiveFormat>, Box<Query>)> {
    let hive = create.hive_formats.take();
    let query = create.query.take().expect("a CREATE TABLE AS has a query");
    let mut bare = create.clone();
    bare.if_not_exists = false;
    let plain = CreateTableBuilder::new(create.name.clone()).build();
    let extra_hive = hive
        .as_ref()
        .is_some_and(|h| h.row_format.is_some() || h.serde_properties.is_some());
    if bare != plain || extra_hive {
        return Err(EngineError::StatementRefused {
            statement: "this form of CREATE TABLE (Lakegate runs CREATE TABLE [IF NOT \
                        EXISTS] db.t [STORED AS PARQUET|DELTA] [LOCATION 'url'] AS SELECT ...)"
                .into(),
        });
    }
    Ok((create, hive, query))
}

/// `sql` with `STORED AS DELTA` in a `CREATE TABLE`'s head read as
/// `STORED AS PARQUET`, and whether it was there. The head ends where the
/// query starts: an `AS` followed by `SELECT`, `WITH`, `VALUES` or `(`.
fn swap_stored_as_delta(sql: &str) -> (std::borrow::Cow<'_, str>, bool) {
    let Ok(mut tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return (sql.into(), false);
    };
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i], Token::Whitespace(_)))
        .collect();
    let keyword = |i: usize| match &tokens[words[i]] {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    if words.is_empty() || keyword(0) != Some(Keyword::CREATE) {
        return (sql.into(), false);
    }
    for i in 0..words.len().saturating_sub(2) {
        let starts_query = keyword(i) == Some(Keyword::AS)
            && (matches!(
                keyword(i + 1),
                Some(Keyword::SELECT | Keyword::WITH | Keyword::VALUES)
            ) || tokens[words[i + 1]] == Token::LParen);
        if starts_query {
            break;
        }
        let delta = matches!(&tokens[words[i + 2]],
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("delta"));
        if keyword(i) == Some(Keyword::STORED) && keyword(i + 1) == Some(Keyword::AS) && delta {
            tokens[words[i + 2]] = Token::make_keyword("PARQUET");
            let text: String = tokens.iter().map(ToString::to_string).collect();
            return (text.into(), true);
        }
    }
    (sql.into(), false)
}

/// A created table's name: simple enough to be a directory's name too.
pub(super) fn check_new_name(table: &TableName) -> Result<()> {
    let simple = !table.table.is_empty()
        && table
            .table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if simple {
        Ok(())
    } else {
        Err(invalid(format!(
            "a created table's name may hold only letters, digits and '_': '{}'",
            table.table
        )))
    }
}

fn invalid(message: String) -> EngineError {
    EngineError::InvalidSql {
        message,
        position: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(sql: &str) -> std::result::Result<TableFormat, String> {
        match parse_create(sql, 1 << 20, Some("db")) {
            Ok(Some(create)) => Ok(create.format),
            Ok(None) => Err("not a CREATE TABLE AS".into()),
            Err(ParsedCreate::Other(e) | ParsedCreate::Refused(e)) => Err(e.to_string()),
        }
    }

    #[test]
    fn stored_as_delta_is_read_in_the_head_only() {
        assert_eq!(
            format_of("CREATE TABLE t STORED AS DELTA AS SELECT 1 AS x"),
            Ok(TableFormat::Delta)
        );
        assert_eq!(
            format_of("create table t stored as delta location '/x/' as select 1 as x"),
            Ok(TableFormat::Delta)
        );
        assert_eq!(
            format_of("CREATE TABLE t STORED AS PARQUET AS SELECT 1 AS x"),
            Ok(TableFormat::Parquet)
        );
        assert_eq!(
            format_of("CREATE TABLE t AS SELECT 1 AS x"),
            Ok(TableFormat::Parquet)
        );
        // In the query, the same words are a column and its alias.
        let (text, delta) = swap_stored_as_delta("CREATE TABLE t AS SELECT stored AS delta FROM s");
        assert!(!delta);
        assert_eq!(text, "CREATE TABLE t AS SELECT stored AS delta FROM s");
        // A quoted "delta" is a name, not the format.
        assert!(!swap_stored_as_delta("CREATE TABLE t STORED AS \"delta\" AS SELECT 1").1);
    }

    #[test]
    fn other_statements_and_forms_are_told_apart() {
        assert_eq!(
            format_of("SELECT 1"),
            Err("not a CREATE TABLE AS".to_string())
        );
        assert_eq!(
            format_of("CREATE TABLE t (x INT)"),
            Err("not a CREATE TABLE AS".to_string())
        );
        for refused in [
            "CREATE TABLE t (x INT) AS SELECT 1",
            "CREATE TEMPORARY TABLE t AS SELECT 1",
            "CREATE TABLE t ROW FORMAT DELIMITED STORED AS PARQUET AS SELECT 1",
            "CREATE TABLE t STORED AS ORC AS SELECT 1",
            "CREATE TABLE `a.b` AS SELECT 1",
        ] {
            assert!(format_of(refused).is_err(), "{refused}");
            assert!(is_create_table_as(refused, 1 << 20), "{refused}");
        }
        assert!(!is_create_table_as("INSERT INTO t VALUES (1)", 1 << 20));
    }
}
