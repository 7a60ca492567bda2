"""Delta Lake tables over Flight SQL with real clients: seed 000's write
scenario on a Delta table (ADBC bulk ingestion from a pandas DataFrame,
INSERT ... SELECT under the writer's read policy, read back exactly), a role
without the grant refused with nothing committed, every write audited with
its version, and versions read by name under the current policy. The
Python `deltalake` library creates the table and reads it independently for
the ground truth."""

import json

import adbc_driver_manager
import deltalake
import pandas
import pyarrow as pa
import pytest

from clients import connect
from conftest import start_server
from test_writes import CATALOG, ORDERS

DELTA_CATALOG = CATALOG.replace('path = "orders/"\n', 'path = "orders/"\nformat = "delta"\n')


@pytest.fixture()
def delta_lake(tmp_path):
    """A Delta table of three orders (version 0, written by deltalake), its
    catalog, and a server auditing into `audit/`."""
    data = tmp_path / "lake"
    first = pa.table({"id": [1, 2, 3], "region": ["EU", "US", "EU"], "amount": [10.0, 20.0, 30.0],
                      "note": ["first", None, None]}, schema=ORDERS)
    deltalake.write_deltalake(str(data / "orders"), first)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.toml").write_text(DELTA_CATALOG)
    audit = tmp_path / "audit"
    with start_server(data, "--audit-dir", str(audit), catalog=catalog) as address:
        yield address, data, audit


def table(data):
    """The table as deltalake reads it: its version and rows by id."""
    stored = deltalake.DeltaTable(str(data / "orders"))
    rows = pa.table(stored.to_pyarrow_table()).sort_by("id").to_pylist()
    return stored.version(), rows


def ids(address, role, sql):
    with connect(address, "hana", role=role) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return sorted(row[0] for row in cursor.fetchall())


def events(audit):
    return [json.loads(line) for line in (audit / "audit.jsonl").read_text().splitlines()]


def test_the_write_scenario_on_a_delta_table(delta_lake):
    address, data, audit = delta_lake
    with connect(address, "hana", role="eu_clerk") as conn:
        # pandas' to_sql over ADBC: bulk ingestion, one commit.
        frame = pandas.DataFrame({"id": [30, 31], "region": ["EU", "EU"], "amount": [7.0, 8.0]})
        assert frame.to_sql("orders", conn, schema="sales", if_exists="append", index=False) == 2
        # INSERT ... SELECT copies only what the writer may read (EU rows).
        cursor = conn.cursor()
        cursor.execute("INSERT INTO sales.orders (id, region, amount) "
                       "SELECT id + 100, region, amount FROM sales.orders WHERE id < 30")
        assert cursor.fetchall() == [(2,)]
    version, rows = table(data)
    assert version == 2
    assert [(r["id"], r["region"], r["amount"], r["note"]) for r in rows] == [
        (1, "EU", 10.0, "first"), (2, "US", 20.0, None), (3, "EU", 30.0, None),
        (30, "EU", 7.0, None), (31, "EU", 8.0, None), (101, "EU", 10.0, None), (103, "EU", 30.0, None)]
    # Read back through Lakegate exactly, by each role.
    assert ids(address, "reader", "SELECT id FROM sales.orders") == [1, 2, 3, 30, 31, 101, 103]
    assert ids(address, "eu_clerk", "SELECT id FROM sales.orders") == [1, 3, 30, 31, 101, 103]

    # A role without an insert grant, and a row outside the check: refused,
    # no version committed, no file added.
    files = sorted(p.name for p in (data / "orders").rglob("*"))
    with connect(address, "hana", role="reader") as conn:
        with pytest.raises(adbc_driver_manager.Error, match="that needs INSERT on it"):
            conn.cursor().adbc_ingest("orders", pa.table({"id": pa.array([50], pa.int64())}),
                                      mode="append", db_schema_name="sales")
    with connect(address, "hana", role="eu_clerk") as conn:
        with pytest.raises(adbc_driver_manager.Error, match="accepted by none"):
            conn.cursor().execute("INSERT INTO sales.orders (id, region, amount) VALUES (51, 'US', 1)")
    assert table(data)[0] == 2
    assert sorted(p.name for p in (data / "orders").rglob("*")) == files

    written = [e for e in events(audit) if (e.get("written") or {}).get("rows")]
    assert [(e["written"]["rows"], e["written"]["version"]) for e in written] == [(2, 1), (2, 2)], written
    assert all(e["written"]["grants"] == ["eu_writes"] for e in written)


def test_versions_are_read_under_the_current_policy(delta_lake):
    address, data, _ = delta_lake
    with connect(address, "hana", role="loader") as conn:
        cursor = conn.cursor()
        cursor.execute("INSERT INTO sales.orders (id, region, amount) VALUES (10, 'US', 1), (11, 'EU', 2)")
        assert cursor.fetchall() == [(2,)]
    assert table(data)[0] == 1
    assert ids(address, "reader", 'SELECT id FROM sales."orders@v0"') == [1, 2, 3]
    assert ids(address, "reader", 'SELECT id FROM sales."orders@v1"') == [1, 2, 3, 10, 11]
    # The row filter of today applies to every version.
    assert ids(address, "eu_clerk", 'SELECT id FROM sales."orders@v0"') == [1, 3]
    assert ids(address, "eu_clerk", 'SELECT id FROM sales."orders@v1"') == [1, 3, 11]
    # A prepared statement over a version, with a parameter.
    with connect(address, "hana", role="eu_clerk") as conn:
        cursor = conn.cursor()
        cursor.execute('SELECT id FROM sales."orders@v1" WHERE id > ?', parameters=(2,))
        assert sorted(row[0] for row in cursor.fetchall()) == [3, 11]
        # Listings name tables, never versions.
        objects = conn.adbc_get_objects(depth="tables", db_schema_filter="sales").read_all().to_pylist()
        names = [t["table_name"] for c in objects for s in c["catalog_db_schemas"] or []
                 for t in s["db_schema_tables"] or []]
        assert names == ["orders"], names
    # A role that may not read the table gets the answer a missing table gets.
    with connect(address, "hana", role="loader") as conn:
        with pytest.raises(adbc_driver_manager.Error) as hidden:
            conn.cursor().execute('SELECT id FROM sales."orders@v0"')
    assert "does not exist or role 'loader' may not read it" in str(hidden.value)
    with connect(address, "hana", role="reader") as conn:
        with pytest.raises(adbc_driver_manager.Error, match="version 7"):
            conn.cursor().execute('SELECT id FROM sales."orders@v7"')
