-- The `analyst` policy of catalog/tpch/grants.toml written by hand as plain
-- views over the raw tables (schema `raw`): variant C′ runs them in
-- DataFusion (the ideal cost of the same semantics, without a policy
-- barrier), variant E in DuckDB. The masks are Lakegate's built-ins spelled
-- out (crates/lakegate-engine/src/masks.rs). One dialect difference: DuckDB's
-- sha256() already answers lowercase hex, so benches/tpch_client.py reads
-- `encode(sha256(x), 'hex')` as `sha256(x)`.
CREATE VIEW customer AS
SELECT
    c_custkey,
    encode(sha256(c_name), 'hex') AS c_name,
    CASE WHEN c_address IS NULL THEN NULL ELSE 'REDACTED' END AS c_address,
    c_nationkey,
    CASE WHEN character_length(c_phone) <= 4 THEN repeat('X', character_length(c_phone))
        ELSE concat(left(c_phone, 4), repeat('X', character_length(c_phone) - 4)) END AS c_phone,
    c_acctbal,
    c_mktsegment
FROM raw.customer
WHERE c_nationkey IN (
    SELECT n_nationkey FROM raw.nation JOIN raw.region ON n_regionkey = r_regionkey
    WHERE r_name = 'EUROPE'
);
CREATE VIEW orders AS
SELECT * FROM raw.orders
WHERE o_custkey IN (
    SELECT c_custkey FROM raw.customer WHERE c_nationkey IN (
        SELECT n_nationkey FROM raw.nation JOIN raw.region ON n_regionkey = r_regionkey
        WHERE r_name = 'EUROPE'
    )
);
CREATE VIEW lineitem AS SELECT * FROM raw.lineitem;
CREATE VIEW part AS SELECT * FROM raw.part;
CREATE VIEW partsupp AS SELECT * FROM raw.partsupp;
CREATE VIEW supplier AS SELECT * FROM raw.supplier;
CREATE VIEW nation AS SELECT * FROM raw.nation;
CREATE VIEW region AS SELECT * FROM raw.region;
