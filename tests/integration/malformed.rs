//! A corpus of malformed SQL: hand-picked cases plus every prefix of a set of
//! valid queries. Nothing may panic; every failure is a clear `InvalidSql`
//! (or a permission error), and parser errors say where.

use lakegate_engine::EngineError;

use crate::common;

const BROKEN: [&str; 24] = [
    "SELEC * FROM orders",
    "SELECT * FROM",
    "SELECT * FROM orders WHERE",
    "SELECT (a FROM orders",
    "SELECT a FROM orders)",
    "SELECT 'unterminated FROM orders",
    "SELECT \"unterminated FROM orders",
    "SELECT a FROM orders WHERE a = = 1",
    "SELECT a,, b FROM orders",
    "SELECT * FROM orders ORDER BY",
    "SELECT * FROM orders LIMIT -",
    "SELECT * FROM orders GROUP",
    "WITH x AS SELECT 1 SELECT * FROM x",
    "SELECT CAST(a AS) FROM orders",
    "SELECT a FROM orders WHERE a IN ()",
    "SELECT * FROM orders JOIN",
    "SELECT 1 +",
    "EXPLAIN",
    "USE",
    "SHOW",
    "DESCRIBE",
    "\u{0}\u{1}\u{2}",
    "SELECT 😀 FROM orders",
    "/* unterminated comment SELECT 1",
];

const VALID: [&str; 4] = [
    "SELECT o.a, count(*) AS n FROM orders o WHERE o.a > 3 AND o.note LIKE 'n%' GROUP BY o.a HAVING count(*) > 0 ORDER BY n DESC LIMIT 5",
    "WITH x AS (SELECT a, amount FROM orders) SELECT a, sum(amount) OVER (PARTITION BY a ORDER BY amount) FROM x",
    "SELECT CASE WHEN a BETWEEN 1 AND 5 THEN 'low' ELSE 'high' END, CAST(amount AS INT) FROM orders UNION ALL SELECT 'x', 1",
    "SELECT * FROM orders WHERE a IN (SELECT a FROM orders WHERE amount > 20.5) AND EXISTS (SELECT 1)",
];

#[tokio::test]
async fn malformed_sql_never_panics_and_errors_are_clear() {
    let lake = common::shop_lake().await;
    let mut cases: Vec<String> = BROKEN.iter().map(|s| s.to_string()).collect();
    for valid in VALID {
        let chars: Vec<char> = valid.chars().collect();
        for end in 1..chars.len() {
            cases.push(chars[..end].iter().collect());
        }
    }
    let mut parse_errors = 0;
    for sql in &cases {
        let engine = lake.engine.clone();
        let sql_owned = sql.clone();
        // A spawned task turns a panic into a JoinError instead of killing the test.
        let outcome = tokio::spawn(async move {
            let mut session = engine.session("ann", Some("auditor")).unwrap();
            session.use_database("shop").unwrap();
            match session.execute(&sql_owned).await {
                Ok(output) => output.collect().await.map(|_| ()),
                Err(e) => Err(e),
            }
        })
        .await;
        let result = outcome.unwrap_or_else(|_| panic!("the engine panicked on {sql:?}"));
        match result {
            Ok(()) => {}
            Err(EngineError::InvalidSql { message, position }) => {
                assert!(!message.is_empty(), "{sql:?}: empty message");
                let from_parser =
                    message.starts_with("sql parser error") || message.contains("Expected");
                if from_parser {
                    parse_errors += 1;
                    assert!(
                        position.is_some(),
                        "{sql:?}: parser error without a position: {message}"
                    );
                }
            }
            Err(EngineError::PermissionDenied(_))
            | Err(EngineError::Execution(_))
            | Err(EngineError::StatementRefused { .. }) => {}
            Err(other) => panic!("{sql:?}: unexpected error kind {other:?}"),
        }
    }
    assert!(
        parse_errors > 100,
        "the corpus should mostly exercise the parser ({parse_errors})"
    );
}

/// Errors Lakegate raises inside DataFusion are found by type: text that
/// reads like one (in a literal, a cast, a value) is classified as what it
/// is, an error of the caller's query.
#[tokio::test]
async fn error_kinds_cannot_be_imitated_by_text() {
    let lake = common::shop_lake().await;
    let imitations = [
        "SELECT CAST('lakegate-policy-failure:shop.orders ' AS INT)",
        "SELECT CAST('lakegate-permission-denied:nothing to see' AS INT)",
        "SELECT CAST('the policy of table shop.orders failed' AS INT)",
        "SELECT * FROM orders WHERE note = 'x' AND CAST('permission denied' AS INT) = 1",
    ];
    for sql in imitations {
        let mut session = lake.engine.session("ann", Some("auditor")).unwrap();
        session.use_database("shop").unwrap();
        let outcome = match session.execute(sql).await {
            Ok(output) => output.collect().await.map(drop),
            Err(e) => Err(e),
        };
        match outcome {
            Err(EngineError::Execution(_) | EngineError::InvalidSql { .. }) => {}
            other => panic!("{sql}: classified as {other:?}"),
        }
    }
    // The real thing is still found: a table the role may not read.
    let mut session = lake.engine.session("ann", Some("analyst")).unwrap();
    let denied = session.execute("SELECT * FROM hr.salaries").await;
    assert!(
        matches!(denied, Err(EngineError::PermissionDenied(_))),
        "{denied:?}"
    );
}
