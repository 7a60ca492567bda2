"""Tables created by their users over Flight SQL (seed 000's write
scenario): a role holding CREATE_TABLE creates tables with CREATE TABLE AS
(as Parquet and as Delta) and with ADBC bulk ingestion in mode create (a
pandas DataFrame), owns them (reads them back exactly, appends to them),
and copies only what it may read; a role without the privilege is refused
and nothing is written (the lake's objects listed before and after).
DuckDB and the Python `deltalake` library read the created files directly
for the ground truth; the server runs on a SQLite policy store seeded from
the catalog."""

import json

import adbc_driver_manager
import deltalake
import duckdb
import pandas
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clients import connect
from conftest import start_server
from test_writes import CATALOG, HANA_HASH, ORDERS

# The sales database keeps new tables under `results/`; eu_clerk may create
# tables in it, reader may not.
CREATING_CATALOG = CATALOG.replace(
    '[[database]]\nname = "sales"\n',
    '[[database]]\nname = "sales"\nstorage = "lake"\npath = "results/"\n',
) + """
[[grant]]
name = "eu_creates"
role = "eu_clerk"
on = "sales.*"
privileges = ["create_table"]

[[role]]
name = "admin"

[[grant]]
name = "administers"
role = "admin"
on = "*"
privileges = ["administer"]

[[user]]
name = "root"
password_hash = "{HANA_HASH}"
may_assume = ["admin"]
default_role = "admin"
"""


@pytest.fixture()
def lake(tmp_path):
    """Three orders (two from the EU), a catalog letting eu_clerk create
    tables, and a server on a policy store auditing into `audit/`."""
    data = tmp_path / "lake"
    (data / "orders").mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2, 3], "region": ["EU", "US", "EU"], "amount": [10.0, 20.0, 30.0],
                             "note": ["first", None, None]}, schema=ORDERS), data / "orders" / "part-0.parquet")
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.toml").write_text(CREATING_CATALOG.replace("{HANA_HASH}", HANA_HASH))
    audit = tmp_path / "audit"
    store = f"sqlite://{tmp_path / 'policy.db'}"
    with start_server(data, "--store", store, "--audit-dir", str(audit), catalog=catalog) as address:
        yield address, data, audit


def objects(data):
    """Every object in the lake, by path."""
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())


def rows(address, role, sql):
    with connect(address, "hana", role=role) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def refusal(address, role, sql):
    with connect(address, "hana", role=role) as conn:
        cursor = conn.cursor()
        with pytest.raises(adbc_driver_manager.Error) as error:
            cursor.execute(sql)
            cursor.fetchall()
    return str(error.value)


def events(audit):
    return [json.loads(line) for line in (audit / "audit.jsonl").read_text().splitlines()]


def test_a_role_creates_owns_and_fills_its_tables(lake):
    address, data, audit = lake
    with connect(address, "hana", role="eu_clerk") as conn:
        cursor = conn.cursor()
        # CREATE TABLE AS copies only what the role reads (the EU rows), into
        # the database's place for new tables.
        cursor.execute("CREATE TABLE sales.eu_orders AS SELECT id, region, amount FROM sales.orders")
        assert cursor.fetchall() == [(2,)]
        # The owner appends to it: INSERT ... SELECT and ingestion.
        cursor.execute("INSERT INTO sales.eu_orders SELECT id + 10, region, amount * 2 FROM sales.orders")
        assert cursor.fetchall() == [(2,)]
        # Bulk ingestion in mode create from a pandas DataFrame, then append.
        totals = pandas.DataFrame({"region": ["EU"], "total": [40.0]})
        assert cursor.adbc_ingest("eu_totals", pa.Table.from_pandas(totals), mode="create",
                                  db_schema_name="sales") == 1
        more = pandas.DataFrame({"region": ["EU"], "total": [80.0]})
        assert more.to_sql("eu_totals", conn, schema="sales", if_exists="append", index=False) == 1
        # As Delta, at a LOCATION of its own.
        cursor.execute(f"CREATE TABLE sales.eu_delta STORED AS DELTA LOCATION 'file://{data}/delta/eu/' "
                       "AS SELECT id, amount FROM sales.orders WHERE amount > 15")
        assert cursor.fetchall() == [(1,)]
    # Read back through Lakegate exactly, and from the files themselves.
    assert rows(address, "eu_clerk", "SELECT id, region, amount FROM sales.eu_orders ORDER BY id") == [
        (1, "EU", 10.0), (3, "EU", 30.0), (11, "EU", 20.0), (13, "EU", 60.0)]
    stored = duckdb.sql(f"SELECT id, region, amount FROM read_parquet('{data}/results/eu_orders/*.parquet') "
                        "ORDER BY id").fetchall()
    assert stored == [(1, "EU", 10.0), (3, "EU", 30.0), (11, "EU", 20.0), (13, "EU", 60.0)]
    assert rows(address, "eu_clerk", "SELECT region, total FROM sales.eu_totals ORDER BY total") == [
        ("EU", 40.0), ("EU", 80.0)]
    delta = deltalake.DeltaTable(str(data / "delta" / "eu"))
    assert delta.version() == 0
    assert pa.table(delta.to_pyarrow_table()).to_pylist() == [{"id": 3, "amount": 30.0}]
    assert rows(address, "eu_clerk", "SELECT id, amount FROM sales.eu_delta") == [(3, 30.0)]
    # Nobody else gains anything: the reader of every order does not see
    # the new tables.
    assert "does not exist or role 'reader' may not read it" in refusal(
        address, "reader", "SELECT * FROM sales.eu_orders")
    # Each creation is audited: what was read, what was written, and the
    # policy version that declared the table.
    created = [e for e in events(audit) if e.get("written") and e.get("policy_version_after")]
    assert [e["written"]["table"] for e in created] == ["sales.eu_orders", "sales.eu_totals", "sales.eu_delta"]
    assert [e["written"]["rows"] for e in created] == [2, 1, 1]
    assert created[2]["written"]["version"] == 0


def test_creating_is_refused_without_the_privilege_and_writes_nothing(lake):
    address, data, audit = lake
    before = objects(data)
    message = refusal(address, "reader", "CREATE TABLE sales.copy AS SELECT * FROM sales.orders")
    assert "role 'reader' may not create tables in it: that needs CREATE_TABLE on it" in message, message
    message = refusal(address, "reader",
                      "CREATE TABLE sales.copy STORED AS DELTA AS SELECT * FROM sales.orders")
    assert "that needs CREATE_TABLE on it" in message, message
    with connect(address, "hana", role="reader") as conn:
        with pytest.raises(adbc_driver_manager.Error, match="needs CREATE_TABLE"):
            conn.cursor().adbc_ingest("copy", pa.table({"id": [1]}), mode="create", db_schema_name="sales")
    assert objects(data) == before
    # The creator is refused too where the table exists, where the place
    # holds files, and outside every registered location; nothing written.
    assert "exists already" in refusal(address, "eu_clerk", "CREATE TABLE sales.orders AS SELECT 1 AS x")
    # A table reads every file under its directory: a new table may neither
    # lie inside one nor hold one.
    for place in ["orders/", "orders/sub/"]:
        assert "a new table needs a directory of its own" in refusal(
            address, "eu_clerk", f"CREATE TABLE sales.again LOCATION 'file://{data}/{place}' AS SELECT 1 AS x")
    assert "is a location's root" in refusal(
        address, "eu_clerk", f"CREATE TABLE sales.again LOCATION 'file://{data}/' AS SELECT 1 AS x")
    assert "not under any registered location" in refusal(
        address, "eu_clerk", "CREATE TABLE sales.away LOCATION 'file:///tmp/elsewhere/' AS SELECT 1 AS x")
    assert "name each column" in refusal(
        address, "eu_clerk", "CREATE TABLE sales.twice AS SELECT a.id, b.id FROM sales.orders a JOIN sales.orders b ON a.id = b.id")
    (data / "stray").mkdir()
    (data / "stray" / "notes.txt").write_text("not a table")
    before = objects(data)
    assert "holds files already" in refusal(
        address, "eu_clerk", f"CREATE TABLE sales.again LOCATION 'file://{data}/stray/' AS SELECT 1 AS x")
    assert objects(data) == before
    # IF NOT EXISTS over an existing table does nothing.
    assert rows(address, "eu_clerk", "CREATE TABLE IF NOT EXISTS sales.orders AS SELECT 1 AS x") == [(0,)]
    assert objects(data) == before
    refused = [e for e in events(audit) if e["outcome"] == "denied"]
    assert len(refused) >= 3


def test_an_administrator_gives_a_database_a_place_for_new_tables(lake):
    address, data, _ = lake
    with connect(address, "root", password="hana-pass") as conn:
        cursor = conn.cursor()
        for statement in [f"CREATE DATABASE scratch LOCATION 'file://{data}/scratch/' COMMENT 'notebooks'",
                          "GRANT CREATE_TABLE ON DATABASE scratch TO ROLE eu_clerk AS eu_scratch"]:
            cursor.execute(statement)
            cursor.fetchall()
        with pytest.raises(adbc_driver_manager.Error, match="not under any registered location"):
            cursor.execute("CREATE DATABASE elsewhere LOCATION 'file:///tmp/elsewhere/'")
            cursor.fetchall()
    assert rows(address, "eu_clerk", "CREATE TABLE scratch.mine AS SELECT id FROM sales.orders") == [(2,)]
    assert duckdb.sql(f"SELECT id FROM read_parquet('{data}/scratch/mine/*.parquet') ORDER BY id").fetchall() == [
        (1,), (3,)]
    assert rows(address, "eu_clerk", "SELECT id FROM scratch.mine ORDER BY id") == [(1,), (3,)]
