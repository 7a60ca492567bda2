"""`lakegate serve --table-cache`: once a table is loaded into memory, every
role still gets exactly its own rows and values (computed by DuckDB from the
raw Parquet files), and the administrator's EXPLAIN shows the scan reading
memory."""

import time

import duckdb

from clients import query
from conftest import raw, start_server


def plan_reads_memory(server, sql):
    plan = query(server, "admin", f"EXPLAIN {sql}")
    text = "\n".join(plan.column("plan").to_pylist())
    # A memory source shows its partitions' sizes, a Parquet scan its files.
    return "partition_sizes" in text


def test_tables_read_from_memory_answer_every_role_as_the_files_do(data_dir):
    sales = "SELECT ws_order_number, ws_item_sk FROM dl_tpc_web_sales"
    customers = "SELECT c_customer_sk, c_email_address FROM dl_tpc_customer"
    west_coast = duckdb.sql(
        f"SELECT ws_order_number, ws_item_sk FROM {raw(data_dir, 'dl_tpc_web_sales')} "
        f"WHERE ws_bill_addr_sk IN (SELECT ca_address_sk FROM {raw(data_dir, 'dl_tpc_customer_address')} "
        f"WHERE ca_state IN ('CA', 'OR', 'WA')) ORDER BY 1, 2"
    ).fetchall()
    hashed = duckdb.sql(
        f"SELECT c_customer_sk, CASE WHEN c_email_address IS NULL THEN NULL ELSE sha256(c_email_address) END "
        f"FROM {raw(data_dir, 'dl_tpc_customer')} ORDER BY 1"
    ).fetchall()
    assert west_coast and hashed

    def check(server):
        tina = query(server, "tina", sales)
        assert sorted(zip(tina.column(0).to_pylist(), tina.column(1).to_pylist())) == west_coast
        david = query(server, "david", customers)
        assert sorted(zip(david.column(0).to_pylist(), david.column(1).to_pylist())) == hashed

    with start_server(data_dir, "--table-cache", "256MiB", "--file-listing-ttl", "1") as server:
        assert not plan_reads_memory(server, sales)
        check(server)  # the first scans read the files and load the tables
        started = time.monotonic()
        while not (plan_reads_memory(server, sales) and plan_reads_memory(server, customers)):
            assert time.monotonic() - started < 60, "the tables were never kept in memory"
            time.sleep(0.1)
        # Restricted roles' scan plans are planned again after the listing TTL.
        time.sleep(1.2)
        check(server)
