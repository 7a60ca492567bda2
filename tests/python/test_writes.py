"""Writes over Flight SQL with real clients: INSERT through ADBC's
cursor.execute (a query), its update call and executemany (a prepared
update with parameter rows), bulk ingestion (adbc_ingest, pandas' to_sql);
rows checked against the writer's insert grant, refused writes leaving the
table as it was, every write audited. DuckDB reads the table's files
directly for the ground truth."""

import json
import pathlib
import threading

import adbc_driver_manager
import duckdb
import pandas
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clients import connect
from conftest import start_server

# hana's password is "hana-pass" (tests/fixtures/hr/principals.toml).
HANA_HASH = "$argon2id$v=19$m=19456,t=2,p=1$IpHgyKAvH2jLdP2QLlKk2Q$y2jwkfvFa2bcI/shv6bo+14PAPLdY5MrE3fnc53fAsc"

CATALOG = f"""
[catalog]
name = "lakegate"
default_database = "sales"

[[storage]]
name = "lake"
url = "${{data_dir}}"

[[database]]
name = "sales"

[[table]]
database = "sales"
name = "orders"
storage = "lake"
path = "orders/"

[[role]]
name = "eu_clerk"

[[role]]
name = "reader"

[[role]]
name = "loader"

[[user]]
name = "hana"
password_hash = "{HANA_HASH}"
may_assume = ["eu_clerk", "reader", "loader"]
default_role = "reader"

[[grant]]
name = "eu_reads"
role = "eu_clerk"
on = "sales.orders"
privileges = ["select"]
row_filter = "region = 'EU'"

[[grant]]
name = "eu_writes"
role = "eu_clerk"
on = "sales.orders"
privileges = ["insert"]
include_columns = ["id", "region", "amount"]
row_filter = "region = 'EU' AND amount >= 0"

[[grant]]
name = "reads_all"
role = "reader"
on = "sales.orders"
privileges = ["select"]

[[grant]]
name = "loads_all"
role = "loader"
on = "sales.orders"
privileges = ["insert"]
"""

ORDERS = pa.schema([("id", pa.int64(), False), ("region", pa.string()), ("amount", pa.float64()),
                    ("note", pa.string())])


@pytest.fixture()
def lake(tmp_path):
    """A fresh lake (one Parquet file of three orders), its catalog, and a
    server over them auditing into the lake's `audit/`."""
    data = tmp_path / "lake"
    (data / "orders").mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2, 3], "region": ["EU", "US", "EU"], "amount": [10.0, 20.0, 30.0],
                             "note": ["first", None, None]}, schema=ORDERS), data / "orders" / "part-0.parquet")
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.toml").write_text(CATALOG)
    audit = tmp_path / "audit"
    with start_server(data, "--audit-dir", str(audit), catalog=catalog) as address:
        yield address, data, audit


def stored(data):
    """The table as its files hold it (DuckDB), sorted by id."""
    return duckdb.sql(f"SELECT id, region, amount, note FROM read_parquet('{data}/orders/*.parquet') "
                      "ORDER BY id").fetchall()


def files(data):
    return sorted(p.name for p in (data / "orders").iterdir())


def seen(address, role, sql="SELECT id FROM sales.orders ORDER BY id"):
    with connect(address, "hana", role=role) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def events(audit):
    return [json.loads(line) for line in (audit / "audit.jsonl").read_text().splitlines()]


def test_insert_by_every_client_call(lake):
    address, data, audit = lake
    with connect(address, "hana", role="eu_clerk") as conn:
        cursor = conn.cursor()
        # cursor.execute sends a query: written at once, one row answering.
        cursor.execute("INSERT INTO sales.orders (id, region, amount) VALUES (10, 'EU', 1.5), (11, 'EU', 2)")
        assert cursor.fetchall() == [(2,)]
        # executemany: one prepared update with every parameter row, one write.
        before = files(data)
        cursor.executemany("INSERT INTO sales.orders (id, region, amount) VALUES (?, ?, ?)",
                           [(12, "EU", 3.0), (13, "EU", 4.0), (14, "EU", 5.0)])
        assert len(files(data)) == len(before) + 1
        # The update call itself (CommandStatementUpdate), as JDBC's
        # executeUpdate sends it.
        statement = cursor.adbc_statement
        statement.set_sql_query("INSERT INTO sales.orders (id, region, amount) VALUES (15, 'EU', 6)")
        assert statement.execute_update() == 1
    # The writer reads its own rows at once; so does everyone else.
    assert seen(address, "eu_clerk") == [1, 3, 10, 11, 12, 13, 14, 15]
    assert seen(address, "reader") == [1, 2, 3, 10, 11, 12, 13, 14, 15]
    assert stored(data)[-1] == (15, "EU", 6.0, None)
    written = [e for e in events(audit) if e.get("written")]
    assert [e["written"]["rows"] for e in written] == [2, 3, 1], written
    for event in written:
        assert event["outcome"] == "ok" and event["role"] == "eu_clerk" and event["user"] == "hana"
        assert event["written"]["table"] == "sales.orders"
        assert event["written"]["grants"] == ["eu_writes"]
        assert event["written"]["bytes"] > 0 and event["written"]["object"].endswith(".parquet")
        assert event["statement"].startswith("INSERT INTO sales.orders")


def test_refused_writes_leave_the_table_as_it_was(lake):
    address, data, audit = lake
    before, table = files(data), stored(data)
    attempts = [
        ("eu_clerk", "INSERT INTO sales.orders (id, region, amount) VALUES (20, 'EU', 1), (21, 'US', 1)",
         "accepted by none of role 'eu_clerk''s INSERT grants (eu_writes)"),
        ("eu_clerk", "INSERT INTO sales.orders (id, region, amount) VALUES (22, 'EU', -1)",
         "accepted by none"),
        ("eu_clerk", "INSERT INTO sales.orders VALUES (23, 'EU', 1, 'a note')", "accepted by none"),
        ("reader", "INSERT INTO sales.orders (id) VALUES (24)", "that needs INSERT on it"),
        ("loader", "INSERT INTO sales.orders SELECT * FROM sales.orders", "may not read it"),
    ]
    for role, sql, expected in attempts:
        with connect(address, "hana", role=role) as conn:
            with pytest.raises(adbc_driver_manager.Error) as error:
                conn.cursor().execute(sql)
        assert expected in str(error.value), (sql, str(error.value))
    assert files(data) == before and stored(data) == table
    # ADBC prepares, then executes: each attempt is denied once, at one
    # step or the other, and nothing is recorded as written.
    inserts = [e for e in events(audit) if (e.get("statement") or "").startswith("INSERT")]
    assert len([e for e in inserts if e["outcome"] == "denied"]) == len(attempts), inserts
    assert not [e for e in inserts if (e.get("written") or {}).get("rows")], inserts


def test_bulk_ingestion_appends_checked_rows(lake):
    address, data, audit = lake
    rows = pa.table({"id": pa.array([30, 31], pa.int64()), "region": ["EU", "EU"], "amount": [7.0, 8.0]})
    with connect(address, "hana", role="eu_clerk") as conn:
        assert conn.cursor().adbc_ingest("orders", rows, mode="append", db_schema_name="sales") == 2
        # One US row refuses the whole ingestion.
        bad = pa.table({"id": pa.array([32, 33], pa.int64()), "region": ["EU", "US"], "amount": [1.0, 1.0]})
        with pytest.raises(adbc_driver_manager.Error, match="accepted by none"):
            conn.cursor().adbc_ingest("orders", bad, mode="append", db_schema_name="sales")
        # Replacing and creating are refused, saying why.
        with pytest.raises(adbc_driver_manager.Error, match="only appends"):
            conn.cursor().adbc_ingest("orders", rows, mode="replace", db_schema_name="sales")
        with pytest.raises(adbc_driver_manager.Error, match="may not create tables"):
            conn.cursor().adbc_ingest("fresh", rows, mode="create", db_schema_name="sales")
    # pandas' to_sql over an ADBC connection takes the same path.
    frame = pandas.DataFrame({"id": [40, 41], "region": ["EU", "EU"], "amount": [9.0, 9.5]})
    with connect(address, "hana", role="eu_clerk") as conn:
        assert frame.to_sql("orders", conn, schema="sales", if_exists="append", index=False) == 2
    assert [row[0] for row in stored(data)] == [1, 2, 3, 30, 31, 40, 41]
    ingested = [e for e in events(audit) if e.get("written")]
    assert [(e["outcome"], e["written"]["rows"]) for e in ingested][:2] == [("ok", 2), ("denied", 0)]
    # The refused creation is audited too, naming the table it would have made.
    assert [e["written"]["table"] for e in ingested if e["outcome"] == "denied"] == ["sales.orders", "sales.fresh"]
    assert all(e["written"]["table"] == "sales.orders" for e in ingested if e["outcome"] == "ok")


def test_readers_see_a_write_whole_or_not_at_all(lake):
    """While a large INSERT (a multipart upload of several parts) runs, a
    reader polling the table sees the rows before it or all of them."""
    address, data, audit = lake
    written = 400_000
    counts, done = [], threading.Event()

    def poll():
        with connect(address, "hana", role="reader") as conn:
            cursor = conn.cursor()
            while not done.is_set():
                cursor.execute("SELECT count(*) FROM sales.orders")
                counts.append(cursor.fetchall()[0][0])

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        with connect(address, "hana", role="loader") as conn:
            cursor = conn.cursor()
            cursor.execute("INSERT INTO sales.orders (id, note) SELECT value + 1000, "
                           "md5(CAST(value AS VARCHAR)) || md5(CAST(-value AS VARCHAR)) "
                           f"FROM generate_series(1, {written})")
            assert cursor.fetchall() == [(written,)]
    finally:
        done.set()
        reader.join(timeout=60)
    assert counts, "the reader never read"
    assert set(counts) <= {3, 3 + written}, sorted(set(counts))
    assert seen(address, "reader", "SELECT count(*) FROM sales.orders") == [3 + written]
