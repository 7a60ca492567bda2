"""Runtime administration over Flight SQL (`lakegate serve --store`): the
demo walkthrough set up entirely by SQL through ADBC on an empty store, the
privilege model's refusals, passwords kept out of every log, and, on a
PostgreSQL store two servers share, revocation in force on the other server
within a second, for tickets already issued, and under 16 concurrent
clients."""

import hashlib
import os
import re
import secrets
import subprocess
import threading
import time

import adbc_driver_manager
import duckdb
import pytest

from clients import connect, query
from conftest import BINARY, raw, start_serving
from test_policy_store import BACKENDS, answers, store_url  # noqa: F401 (fixture)

ADMIN = ("admin", "admin-pass")
BOOTSTRAP = {**os.environ, "LAKEGATE_BOOTSTRAP_ADMIN": "admin:admin-pass"}


def setup_statements(lake):
    """The walkthrough's setup (DESIGN §4), as a data steward types it."""
    tables = ["dl_tpc_customer", "dl_tpc_customer_address", "dl_tpc_web_sales", "dl_tpc_item"]
    return [
        f"CREATE LOCATION demo_lake URL 'file://{lake}/'",
        "CREATE DATABASE tpc COMMENT 'TPC-DS tables of the demo data lake'",
        "ALTER CATALOG SET DEFAULT DATABASE tpc",
        *[f"CREATE EXTERNAL TABLE tpc.{t} STORED AS PARQUET LOCATION 'file://{lake}/{t}/'" for t in tables],
        "CREATE ROLE marketing COMMENT 'customer data without names, e-mails hashed'",
        "CREATE ROLE sales COMMENT 'web sales billed to west-coast addresses'",
        "CREATE ROLE electronics COMMENT 'items of the Electronics category'",
        "CREATE USER david PASSWORD 'david-pass' DEFAULT ROLE marketing",
        "CREATE USER tina PASSWORD 'tina-pass' DEFAULT ROLE sales",
        "GRANT ROLE electronics TO USER tina",
        "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE marketing "
        "EXCLUDING COLUMNS (c_salutation, c_first_name, c_last_name) "
        "MASK c_email_address USING hash AS marketing_customer",
        "GRANT SELECT ON TABLE tpc.dl_tpc_web_sales TO ROLE sales "
        "WHERE ws_bill_addr_sk IN (SELECT ca_address_sk FROM dl_tpc_customer_address "
        "WHERE ca_state IN ('CA', 'OR', 'WA')) AS sales_west_coast_web_sales",
        "GRANT SELECT ON TABLE tpc.dl_tpc_item TO ROLE electronics "
        "WHERE i_category = 'Electronics' AS electronics_items",
    ]


def execute(address, statements, user=ADMIN):
    """Runs each statement with `cursor.execute` (a query, as notebooks
    send it); the rows of each answer."""
    results = []
    with connect(address, user[0], password=user[1]) as conn:
        cursor = conn.cursor()
        for statement in statements:
            cursor.execute(statement)
            results.append(cursor.fetch_arrow_table().to_pylist())
    return results


def refused(address, statement, user=ADMIN, role=None):
    """The error message of a statement that must fail."""
    with connect(address, user[0], password=user[1], role=role) as conn:
        cursor = conn.cursor()
        with pytest.raises(adbc_driver_manager.Error) as error:
            cursor.execute(statement)
            cursor.fetch_arrow_table()
    return str(error.value)


def serve_store(data_dir, url, *flags, env=BOOTSTRAP, log=None):
    """`lakegate serve` on the store `url` alone; its stderr into `log`."""
    command = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--store", url, *flags]
    return start_serving(command, env=env, stderr=log)


def export(url, directory):
    subprocess.run([BINARY, "catalog", "export", "--store", url, str(directory)],
                   capture_output=True, text=True, timeout=120, check=True)
    return (directory / "catalog.toml").read_text()


def check_against_duckdb(address, data_dir):
    """David's and Tina's answers on the store, against DuckDB's reading of
    the Parquet files under the walkthrough's policy."""
    customer, web_sales, address_table = (raw(data_dir, t) for t in
                                          ["dl_tpc_customer", "dl_tpc_web_sales", "dl_tpc_customer_address"])
    with connect(address, "david") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT c_customer_sk, c_email_address FROM dl_tpc_customer ORDER BY 1")
        david = [tuple(r.values()) for r in cursor.fetch_arrow_table().to_pylist()]
    expected = duckdb.sql(f"SELECT c_customer_sk, sha256(c_email_address) FROM {customer} ORDER BY 1").fetchall()
    assert david == expected
    with connect(address, "tina") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT ws_order_number, ws_item_sk FROM dl_tpc_web_sales ORDER BY 1, 2")
        tina = [tuple(r.values()) for r in cursor.fetch_arrow_table().to_pylist()]
    expected = duckdb.sql(
        f"SELECT ws_order_number, ws_item_sk FROM {web_sales} WHERE ws_bill_addr_sk IN "
        f"(SELECT ca_address_sk FROM {address_table} WHERE ca_state IN ('CA', 'OR', 'WA')) ORDER BY 1, 2"
    ).fetchall()
    assert tina == expected and tina


def test_the_walkthrough_set_up_by_sql_answers_as_the_declarative_demo(
        server, data_dir, store_url, tmp_path):  # noqa: F811
    expected = answers(server)
    with serve_store(data_dir, store_url) as (address, _):
        results = execute(address, setup_statements(data_dir / "tpc"))
        versions = [rows[0]["policy_version"] for rows in results]
        assert versions == sorted(versions) and len(set(versions)) == len(versions), versions
        assert answers(address) == expected
        check_against_duckdb(address, data_dir)
        # Sent as updates too (ADBC execute_update, JDBC executeUpdate).
        with connect(address, *ADMIN) as conn:
            cursor = conn.cursor()
            cursor.adbc_statement.set_sql_query("CREATE ROLE auditors")
            assert cursor.adbc_statement.execute_update() == 1
    # After a restart, from the store alone.
    with serve_store(data_dir, store_url) as (address, _):
        assert answers(address) == expected
        roles = execute(address, ["SHOW ROLES"])[0]
        assert {r["name"] for r in roles} >= {"marketing", "sales", "electronics", "auditors"}
    # Exported, as a declarative catalog.
    exported = tmp_path / "exported"
    export(store_url, exported)
    from conftest import start_server
    with start_server(data_dir, catalog=exported) as address:
        assert answers(address) == expected


def tag_setup_statements(lake):
    """The walkthrough's setup governed by tags alone: no grant, mask or
    filter names a table."""
    tables = ["dl_tpc_customer", "dl_tpc_customer_address", "dl_tpc_web_sales", "dl_tpc_item"]
    names = ["c_salutation", "c_first_name", "c_last_name"]
    west_coast = ("ws_bill_addr_sk IN (SELECT ca_address_sk FROM dl_tpc_customer_address "
                  "WHERE ca_state IN ('CA', 'OR', 'WA'))")
    return [
        f"CREATE LOCATION demo_lake URL 'file://{lake}/'",
        "CREATE DATABASE tpc",
        "ALTER CATALOG SET DEFAULT DATABASE tpc",
        *[f"CREATE EXTERNAL TABLE tpc.{t} STORED AS PARQUET LOCATION 'file://{lake}/{t}/'" for t in tables],
        "CREATE ROLE marketing",
        "CREATE ROLE sales",
        "CREATE ROLE electronics",
        "CREATE USER david PASSWORD 'david-pass' DEFAULT ROLE marketing",
        "CREATE USER tina PASSWORD 'tina-pass' DEFAULT ROLE sales",
        "GRANT ROLE electronics TO USER tina",
        "CREATE TAG domain VALUES ('customers', 'sales', 'products', 'reference') COMMENT 'business domain'",
        "CREATE TAG pii VALUES ('name', 'email')",
        "ALTER DATABASE tpc SET TAGS (domain = 'reference')",
        "ALTER TABLE tpc.dl_tpc_customer SET TAGS (domain = 'customers')",
        *[f"ALTER TABLE tpc.dl_tpc_customer ALTER COLUMN {c} SET TAGS (pii = 'name')" for c in names],
        "ALTER TABLE tpc.dl_tpc_customer ALTER COLUMN c_email_address SET TAGS (pii = 'email')",
        "ALTER TABLE tpc.dl_tpc_web_sales SET TAGS (domain = 'sales')",
        "ALTER TABLE tpc.dl_tpc_item SET TAGS (domain = 'products')",
        "GRANT SELECT ON TAGGED domain = 'customers' AND NOT pii = 'name' TO ROLE marketing AS marketing_customers",
        "MASK COLUMNS TAGGED pii = 'email' USING hash FOR ROLE marketing AS marketing_emails_hashed",
        "GRANT SELECT ON TAGGED domain = 'sales' TO ROLE sales AS sales_domain",
        f"ROW FILTER ON TAGGED domain = 'sales' FOR ROLE sales WHERE {west_coast} AS sales_west_coast",
        "GRANT SELECT ON TAGGED domain = 'products' TO ROLE electronics AS electronics_products",
        "ROW FILTER ON TAGGED domain = 'products' FOR ROLE electronics WHERE i_category = 'Electronics' "
        "AS electronics_only",
    ]


def rows_of(address, user, role, sql):
    with connect(address, user, role=role) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetch_arrow_table().to_pylist()


def test_the_walkthrough_governed_by_tags_by_sql_answers_as_the_declarative_demo(
        server, data_dir, store_url):  # noqa: F811
    expected = answers(server)
    lake = data_dir / "tpc"
    tina_electronics = (("tina", "tina-pass"), "electronics")
    with serve_store(data_dir, store_url) as (address, _):
        execute(address, tag_setup_statements(lake))
        assert answers(address) == expected
        check_against_duckdb(address, data_dir)

        definitions, on_table = execute(address, ["SHOW TAGS", "SHOW TAGS ON TABLE tpc.dl_tpc_customer"])
        assert {d["key"]: d["values"] for d in definitions} == {
            "domain": "customers, products, reference, sales", "pii": "email, name"}
        assert {"resource": "table", "key": "domain", "value": "customers", "set_on": "table"} in on_table
        assert {"resource": "column c_email_address", "key": "pii", "value": "email",
                "set_on": "column"} in on_table
        on_item = execute(address, ["SHOW GRANTS ON TABLE tpc.dl_tpc_item"])[0]
        names = {g["name"] for g in on_item}
        assert "electronics_products" in names and not names & {"marketing_customers", "sales_domain"}, names
        assert next(g for g in on_item if g["name"] == "electronics_products")["on"] == "TAGGED domain = 'products'"
        [access] = [execute(address, ["SHOW EFFECTIVE ACCESS FOR ROLE marketing ON TABLE tpc.dl_tpc_customer"])[0]]
        email = next(row for row in access if row["column"] == "c_email_address")
        assert email["access"] == "masked: hash"
        assert "marketing_emails_hashed" in email["grants"]

        # A new table is governed the moment it is tagged, and no longer
        # once the tag goes.
        execute(address, [f"CREATE EXTERNAL TABLE tpc.items_2027 STORED AS PARQUET "
                          f"LOCATION 'file://{lake}/dl_tpc_item/'"])
        assert "items_2027" in refused(address, "SELECT count(*) FROM items_2027", *tina_electronics)
        execute(address, ["ALTER TABLE tpc.items_2027 SET TAGS (domain = 'products')"])
        categories = rows_of(address, "tina", "electronics", "SELECT DISTINCT i_category FROM items_2027")
        assert categories == [{"i_category": "Electronics"}]
        execute(address, ["ALTER TABLE tpc.items_2027 UNSET TAGS (domain)"])
        assert "items_2027" in refused(address, "SELECT count(*) FROM items_2027", *tina_electronics)

        # A column tagged pii = 'email' is hashed for marketing at once.
        execute(address, ["ALTER TABLE tpc.dl_tpc_customer ALTER COLUMN c_birth_country SET TAGS (pii = 'email')"])
        countries = rows_of(address, "david", None,
                            "SELECT c_birth_country FROM dl_tpc_customer WHERE c_birth_country IS NOT NULL")
        assert countries and all(len(row["c_birth_country"]) == 64 for row in countries), countries[:3]
        # Tagged pii = 'name', it is gone from marketing's view.
        execute(address, ["ALTER TABLE tpc.dl_tpc_customer ALTER COLUMN c_birth_country SET TAGS (pii = 'name')"])
        assert "c_birth_country" in refused(address, "SELECT c_birth_country FROM dl_tpc_customer",
                                            ("david", "david-pass"))

        # A steward may set and unset the keys it was given, and nothing else.
        sam = ("sam", "sam-tag-pass")
        execute(address, ["CREATE ROLE steward",
                          f"CREATE USER sam PASSWORD '{sam[1]}' DEFAULT ROLE steward",
                          "GRANT ASSIGN ON TAG pii TO ROLE steward"])
        execute(address, ["ALTER TABLE tpc.dl_tpc_item ALTER COLUMN i_brand SET TAGS (pii = 'email')",
                          "ALTER TABLE tpc.dl_tpc_item ALTER COLUMN i_brand UNSET TAGS (pii)"], user=sam)
        for statement in ["ALTER TABLE tpc.dl_tpc_item SET TAGS (domain = 'sales')",
                          "GRANT SELECT ON TAGGED pii = 'email' TO ROLE steward",
                          "CREATE TAG tier VALUES ('gold')",
                          "GRANT ASSIGN ON TAG domain TO ROLE steward"]:
            assert "lacks the privilege" in refused(address, statement, sam), statement
        assert "ASSIGN is granted alone" in refused(address, "GRANT SELECT, ASSIGN ON TAG pii TO ROLE sales")

        # Refusals say why and change nothing.
        assert "still set on" in refused(address, "DROP TAG pii")
        assert "no value 'phone'" in refused(
            address, "ALTER TABLE tpc.dl_tpc_item SET TAGS (pii = 'phone')")
        assert "unknown tag 'pi'" in refused(address, "GRANT SELECT ON TAGGED pi = 'name' TO ROLE sales")
        assert "ADMINISTER" in refused(address, "CREATE TAG tier VALUES ('gold')", ("david", "david-pass"))
        assert "ADMINISTER" in refused(
            address, "ALTER TABLE tpc.dl_tpc_item SET TAGS (domain = 'customers')", ("tina", "tina-pass"))
        assert answers(address)[1:] == expected[1:]


@pytest.fixture
def steward_store(data_dir, tmp_path):
    """A SQLite store with the walkthrough set up, a steward role holding
    two columns of customer with grant option (e-mail hashed, rows of
    customers born after 1980), its user sam, and the server's log."""
    url = f"sqlite://{tmp_path / 'policy.db'}"
    log = open(tmp_path / "server.log", "w")
    env = {**BOOTSTRAP, "RUST_LOG": "debug"}
    with serve_store(data_dir, url, env=env, log=log) as (address, printed):
        execute(address, setup_statements(data_dir / "tpc") + [
            "CREATE ROLE steward",
            "CREATE USER sam PASSWORD 'sam-secret-pass' DEFAULT ROLE steward",
            "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE steward "
            "COLUMNS (c_customer_sk, c_email_address, c_birth_year) MASK c_email_address USING hash "
            "WHERE c_birth_year > 1980 AS steward_customer WITH GRANT OPTION",
        ])
        yield address, url, tmp_path
    log.close()


def test_a_grantor_passes_on_only_what_it_holds(steward_store):
    address, url, tmp_path = steward_store
    sam = ("sam", "sam-secret-pass")
    before = export(url, tmp_path / "before")
    # More columns than it holds.
    message = refused(address, "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE marketing "
                               "COLUMNS (c_customer_sk, c_first_name)", user=sam)
    assert "PERMISSION_DENIED" in message or "UNAUTHORIZED" in message, message
    assert "c_first_name" in message and "grant option" in message, message
    # Unmasking what it holds masked.
    message = refused(address, "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE marketing "
                               "COLUMNS (c_email_address) MASK c_email_address USING redact", user=sam)
    assert "masked" in message, message
    # A table it holds nothing of.
    message = refused(address, "GRANT SELECT ON TABLE tpc.dl_tpc_item TO ROLE marketing", user=sam)
    assert "SELECT on TABLE tpc.dl_tpc_item with grant option" in message, message
    # Administration it does not hold.
    message = refused(address, "CREATE ROLE intruders", user=sam)
    assert "ADMINISTER" in message, message
    # A user without any grant option.
    message = refused(address, "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE sales",
                      user=("david", "david-pass"))
    assert "with grant option" in message, message
    assert export(url, tmp_path / "after") == before
    # What it may pass on is narrowed to what it holds: its mask and its
    # row filter come with it.
    execute(address, ["GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE sales "
                      "COLUMNS (c_customer_sk, c_email_address) AS sales_from_sam"], user=sam)
    grants = execute(address, ["SHOW GRANTS TO ROLE sales"])[0]
    granted = next(g for g in grants if g["name"] == "sales_from_sam")
    assert granted["masks"] == "c_email_address: hash", granted
    assert granted["row_filter"] == "c_birth_year > 1980", granted
    with connect(address, "tina", role="sales") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT c_customer_sk, c_email_address FROM tpc.dl_tpc_customer")
        rows = cursor.fetch_arrow_table().to_pylist()
    with connect(address, "admin") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT c_customer_sk, sha256(c_email_address) AS e FROM tpc.dl_tpc_customer "
                       "WHERE c_birth_year > 1980")
        expected = cursor.fetch_arrow_table().to_pylist()
    assert len(rows) == len(expected) > 0
    # REVOKE GRANT by a holder of grant option on the table.
    execute(address, ["REVOKE GRANT sales_from_sam"], user=sam)
    assert not any(g["name"] == "sales_from_sam" for g in execute(address, ["SHOW GRANTS"])[0])


def write_people(directory):
    """`people`: id, customer {name, email, address {city}}, orders [{item, price}]."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True)
    table = pa.table({
        "id": [1, 2],
        "customer": [
            {"name": "ann", "email": "ann@example.com", "address": {"city": "Oslo"}},
            {"name": "bob", "email": "bob@example.com", "address": {"city": "Lima"}},
        ],
        "orders": [[{"item": "pen", "price": 1.5}], []],
    })
    pq.write_table(table, directory / "part-0.parquet")


def test_nested_fields_are_granted_masked_tagged_and_passed_on_by_sql(steward_store):
    address, url, tmp_path = steward_store
    sam = ("sam", "sam-secret-pass")
    write_people(tmp_path / "crm" / "people")
    execute(address, [
        f"CREATE LOCATION crm_lake URL 'file://{tmp_path / 'crm'}/'",
        "CREATE DATABASE crm",
        f"CREATE EXTERNAL TABLE crm.people STORED AS PARQUET LOCATION 'file://{tmp_path / 'crm' / 'people'}/'",
        "GRANT SELECT ON TABLE crm.people TO ROLE steward "
        "COLUMNS (id, customer.name, customer.email, orders) MASK customer.email USING hash "
        "AS steward_people WITH GRANT OPTION",
        "CREATE TAG nested_pii VALUES ('item')",
        "ALTER TABLE crm.people ALTER COLUMN orders.item SET TAGS (nested_pii = 'item')",
        "MASK COLUMNS TAGGED nested_pii = 'item' USING redact FOR ROLE steward AS steward_items",
    ])
    with connect(address, *sam) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT * FROM crm.people ORDER BY id")
        seen = cursor.fetch_arrow_table()
    assert [f.name for f in seen.schema.field("customer").type] == ["name", "email"]
    assert seen.to_pylist()[0] == {
        "id": 1,
        "customer": {"name": "ann", "email": hashlib.sha256(b"ann@example.com").hexdigest()},
        "orders": [{"item": "REDACTED", "price": 1.5}],
    }
    # A hidden field answers as a hidden column does.
    message = refused(address, "SELECT customer['address'] FROM crm.people", user=sam)
    assert "No field named address" in message, message
    [effective] = [execute(address, ["SHOW EFFECTIVE ACCESS FOR ROLE steward ON TABLE crm.people"])[0]]
    rules = {row["column"]: row["access"] for row in effective}
    assert rules["customer.email"] == "masked: hash" and rules["orders.item"] == "masked: redact", rules
    assert rules["customer.address.city"] == "hidden", rules

    # Passed on: never more fields than held, never unmasked.
    before = export(url, tmp_path / "before")
    message = refused(address, "GRANT SELECT ON TABLE crm.people TO ROLE sales COLUMNS (customer)", user=sam)
    assert "customer.address.city" in message and "grant option" in message, message
    message = refused(address, "GRANT SELECT ON TABLE crm.people TO ROLE sales "
                               "COLUMNS (customer.email) MASK customer.email USING redact", user=sam)
    assert "masked" in message, message
    assert export(url, tmp_path / "after") == before
    execute(address, ["GRANT SELECT ON TABLE crm.people TO ROLE sales "
                      "COLUMNS (id, customer.email) AS sales_from_sam"], user=sam)
    grants = execute(address, ["SHOW GRANTS TO ROLE sales"])[0]
    assert next(g for g in grants if g["name"] == "sales_from_sam")["masks"] == "customer.email: hash"
    tina = query(address, "tina", "SELECT customer FROM crm.people ORDER BY id", role="sales").to_pylist()
    assert tina[1] == {"customer": {"email": hashlib.sha256(b"bob@example.com").hexdigest()}}


def test_write_privileges_are_granted_shown_and_named_in_refusals(steward_store):
    address, url, tmp_path = steward_store
    tina = ("tina", "tina-pass")
    execute(address, [
        "GRANT INSERT ON TABLE tpc.dl_tpc_item TO ROLE electronics COLUMNS (i_item_sk, i_category) "
        "WHERE i_category = 'Electronics' AS electronics_item_writes",
        "GRANT CREATE_TABLE ON DATABASE tpc TO ROLE electronics AS electronics_tables",
    ])
    grants = {g["name"]: g for g in execute(address, ["SHOW GRANTS TO ROLE electronics"])[0]}
    assert grants["electronics_item_writes"]["privileges"] == "INSERT"
    assert grants["electronics_item_writes"]["row_filter"] == "i_category = 'Electronics'"
    assert grants["electronics_tables"]["privileges"] == "CREATE_TABLE"
    # The grant takes effect at once: a row outside its check is refused
    # naming it (and nothing is written); a role without it is told what it
    # needs.
    message = refused(address, "INSERT INTO tpc.dl_tpc_item (i_item_sk, i_category) VALUES (1, 'Books')",
                      user=tina, role="electronics")
    assert "PermissionDenied" in message, message
    assert "accepted by none of role 'electronics''s INSERT grants (electronics_item_writes)" in message, message
    message = refused(address, "INSERT INTO tpc.dl_tpc_item (i_item_sk) VALUES (1)", user=tina, role="sales")
    assert "may not insert into it: that needs INSERT on it" in message, message
    # CREATE_TABLE is in force at once too: tpc has no place for new tables,
    # so a table must name its LOCATION (test_created_tables.py creates them).
    message = refused(address, "CREATE TABLE tpc.mine AS SELECT 1 AS x", user=tina, role="electronics")
    assert "database 'tpc' has no location for new tables" in message, message
    # ADBC bulk ingestion (what pandas' to_sql takes) likewise, by mode.
    import pyarrow as pa
    rows = pa.table({"i_item_sk": [1], "i_category": ["Books"]})
    for table, mode, expected in [("dl_tpc_item", "append", "accepted by none of role 'electronics''s"),
                                  ("mine", "create", "database 'tpc' has no location for new tables")]:
        with connect(address, *tina, role="electronics") as conn:
            with pytest.raises(adbc_driver_manager.Error) as error:
                conn.cursor().adbc_ingest(table, rows, mode=mode, db_schema_name="tpc")
        assert expected in str(error.value), str(error.value)
    # A misplaced write privilege is refused and changes nothing.
    before = export(url, tmp_path / "before")
    message = refused(address, "GRANT CREATE_TABLE ON TABLE tpc.dl_tpc_item TO ROLE electronics")
    assert "create_table is granted on a database" in message, message
    assert export(url, tmp_path / "after") == before


def test_refusals_change_nothing_and_say_why(steward_store):
    address, url, tmp_path = steward_store
    before = export(url, tmp_path / "before")
    # The last administrator stays.
    for statement in ["DROP USER admin", "REVOKE ROLE lake_admin FROM USER admin", "DROP ROLE lake_admin",
                      "REVOKE ADMINISTER ON CATALOG FROM ROLE lake_admin"]:
        message = refused(address, statement)
        assert "no administrator" in message, (statement, message)
    # A malformed statement: INVALID_ARGUMENT with the position.
    message = refused(address, "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO marketing")
    assert "INVALID_ARGUMENT" in message and "expected ROLE" in message and "line 1, column 46" in message, message
    message = refused(address, "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE sales WHERE (((c_customer_sk")
    assert "INVALID_ARGUMENT" in message, message
    # A row filter that does not plan is refused before anything is written.
    message = refused(address, "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE sales WHERE no_such_column > 1")
    assert "INVALID_ARGUMENT" in message and "no_such_column" in message, message
    # A table another grant's row filter reads cannot be dropped from under it.
    message = refused(address, "DROP TABLE tpc.dl_tpc_customer_address")
    assert "INVALID_ARGUMENT" in message and "sales_west_coast_web_sales" in message, message
    # Files outside every registered location.
    message = refused(address, "CREATE EXTERNAL TABLE tpc.passwd STORED AS PARQUET LOCATION 'file:///etc/'")
    assert "not under any registered location" in message, message
    # A secret inline.
    message = refused(address, "CREATE LOCATION bucket URL 's3://bucket/lake/' "
                               "WITH (region = 'eu-west-1', secret_access_key = 'AKIA-very-secret')")
    assert "secret_access_key_env" in message and "AKIA-very-secret" not in message, message
    # Unknown names.
    assert "there is no role" in refused(address, "GRANT ROLE nobody TO USER david")
    assert "there is no table" in refused(address, "DROP TABLE tpc.nothing")
    assert export(url, tmp_path / "after") == before
    # Without a store, administration is refused as read-only.


def test_passwords_appear_in_no_log_no_audit_and_no_error(steward_store, data_dir):
    address, url, tmp_path = steward_store
    execute(address, ["CREATE USER pat PASSWORD 'pat-first-secret'",
                      "ALTER USER pat SET PASSWORD 'pat-second-secret'"])
    refused(address, "CREATE USER pat PASSWORD 'pat-third-secret'")  # exists already
    refused(address, "CREATE USER quinn PASSWORD 'quinn-secret' 'extra-secret'")  # malformed
    # A user changes its own password.
    execute(address, ["ALTER USER sam SET PASSWORD 'sam-new-secret'"], user=("sam", "sam-secret-pass"))
    execute(address, ["SELECT 1"], user=("sam", "sam-new-secret"))
    audit = "".join(p.read_text() for p in (data_dir / "audit").glob("audit.jsonl*"))
    log = (tmp_path / "server.log").read_text()
    store = (tmp_path / "policy.db").read_bytes()
    for secret in ["pat-first-secret", "pat-second-secret", "pat-third-secret", "quinn-secret",
                   "extra-secret", "sam-secret-pass", "sam-new-secret", "david-pass"]:
        assert secret not in audit, secret
        assert secret not in log, secret
        assert secret.encode() not in store, secret
    assert "CREATE USER pat PASSWORD '***'" in audit
    # system.audit: each change with the version it was made against and
    # the version it made; refusals with the version only.
    rows = execute(address, ["SELECT statement, outcome, policy_version, policy_version_after FROM system.audit "
                             "WHERE statement LIKE 'ALTER USER pat%' OR statement LIKE 'CREATE USER pat%' "
                             "ORDER BY time"])[0]
    changes = [r for r in rows if r["policy_version_after"] is not None]
    assert [r["statement"] for r in changes] == ["CREATE USER pat PASSWORD '***'",
                                                 "ALTER USER pat SET PASSWORD '***'"], rows
    assert all(r["policy_version_after"] == r["policy_version"] + 1 for r in changes), changes
    refusal = [r for r in rows if r["outcome"] != "ok"]
    assert refusal and refusal[0]["policy_version_after"] is None, rows


def test_a_declarative_catalog_refuses_administration(server):
    message = refused(server, "CREATE ROLE r", user=("admin", "admin-pass"))
    assert "FailedPrecondition" in message and "--store" in message, message


# --- a fleet: two servers on one PostgreSQL store ------------------------

needs_postgres = pytest.mark.skipif("postgres" not in BACKENDS, reason="LAKEGATE_TEST_POSTGRES is not set")


@pytest.fixture
def fleet(data_dir, tmp_path):
    """Two servers sharing a new PostgreSQL store and a key, with the
    walkthrough set up and a role `probe` (user `pia`) whose access the
    tests narrow and widen."""
    base = os.environ["LAKEGATE_TEST_POSTGRES"].rstrip("/")
    name = f"lakegate_fleet_{secrets.token_hex(6)}"
    subprocess.run(["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    url = f"{base}/{name}"
    key = tmp_path / "key"
    key.write_text(secrets.token_hex(32))
    try:
        with serve_store(data_dir, url, "--key-file", str(key)) as (first, _):
            execute(first, setup_statements(data_dir / "tpc") + [
                "CREATE ROLE probe",
                "CREATE USER pia PASSWORD 'pia-pass' DEFAULT ROLE probe",
                "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE probe COLUMNS (c_customer_sk) "
                "WHERE c_customer_sk <= 100 AS probe_narrow",
            ])
            with serve_store(data_dir, url, "--key-file", str(key)) as (second, _):
                yield first, second
    finally:
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True)


WIDE = ("GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE probe COLUMNS (c_customer_sk, c_email_address) "
        "WHERE c_customer_sk <= 500 AS probe_wide")
PROBE = "SELECT * FROM tpc.dl_tpc_customer"


def probe(conn):
    cursor = conn.cursor()
    cursor.execute(PROBE)
    table = cursor.fetch_arrow_table()
    return max(table.column("c_customer_sk").to_pylist()), "c_email_address" in table.column_names


def wait_until(conn, wanted):
    """Seconds until `probe` gives `wanted`, polled without sleeping."""
    started = time.monotonic()
    while probe(conn) != wanted:
        assert time.monotonic() - started < 5, f"not {wanted} after 5 s but {probe(conn)}"
    return time.monotonic() - started


@needs_postgres
def test_a_grant_and_a_revoke_reach_the_other_server_within_a_second(fleet):
    first, second = fleet
    with connect(second, "pia") as reader, connect(first, *ADMIN) as admin:
        assert probe(reader) == (100, False)
        admin.cursor().execute(WIDE)
        granted = wait_until(reader, (500, True))
        admin.cursor().execute("REVOKE GRANT probe_wide")
        revoked = wait_until(reader, (100, False))
    print(f"grant visible on the other server after {granted * 1000:.1f} ms, revoke after {revoked * 1000:.1f} ms")
    assert granted < 1 and revoked < 1


@needs_postgres
def test_a_ticket_issued_before_a_revoke_is_refused_at_doget(fleet):
    first, second = fleet
    with connect(second, "pia") as reader, connect(first, *ADMIN) as admin:
        cursor = reader.cursor()
        partitions, _schema = cursor.adbc_execute_partitions(PROBE)
        admin.cursor().execute("REVOKE SELECT ON TABLE tpc.dl_tpc_customer FROM ROLE probe")
        with pytest.raises(adbc_driver_manager.Error, match="PERMISSION_DENIED|UNAUTHORIZED|denied"):
            cursor.adbc_read_partition(partitions[0])
            cursor.fetch_arrow_table()


@needs_postgres
def test_no_query_started_after_a_revoke_returned_reads_what_it_revoked(fleet):
    first, second = fleet
    stop = threading.Event()
    revoked_at = []  # (returned, next grant started)
    observations = []  # (started, finished, max id, email visible)
    refusals = []  # tickets planned before a change, redeemed after it
    errors = []

    def client(address):
        try:
            with connect(address, "pia") as conn:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        seen = probe(conn)
                    except adbc_driver_manager.Error as error:
                        # A statement planned before a change and run after
                        # it, whose columns the change altered: refused.
                        if not re.search("policy changed since this (ticket was issued|statement was prepared)",
                                         str(error)):
                            raise
                        refusals.append(started)
                        continue
                    observations.append((started, time.monotonic(), *seen))
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    clients = [threading.Thread(target=client, args=([first, second][i % 2],)) for i in range(16)]
    for thread in clients:
        thread.start()
    with connect(first, *ADMIN) as admin:
        for _ in range(5):
            admin.cursor().execute(WIDE)
            time.sleep(0.3)
            admin.cursor().execute("REVOKE GRANT probe_wide")
            returned = time.monotonic()
            time.sleep(0.3)
            revoked_at.append((returned, time.monotonic()))
    stop.set()
    for thread in clients:
        thread.join()
    assert not errors, errors
    checked = 0
    for returned, regranted in revoked_at:
        for started, finished, biggest, email in observations:
            # Started after the revoke returned and finished before the next
            # grant was sent: nothing but the revoked policy can have served
            # it. (A query started just before the next grant may be planned
            # after that grant returned, and then rightly sees it.)
            if returned < started and finished < regranted:
                checked += 1
                assert biggest <= 100 and not email, (started - returned, biggest, email)
    assert checked > 16, checked
    print(f"{len(observations)} queries, {checked} ran wholly between a revoke and the next grant, "
          f"{len(refusals)} tickets refused after a change")


# --- the administration API's command-line client ------------------------

def admin_cli(address, *args, user="admin", password="admin-pass", check=True):
    done = subprocess.run([BINARY, "admin", "--server", address, "--user", user, "--format", "json", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LAKEGATE_PASSWORD": password})
    if check:
        assert done.returncode == 0, done.stderr
    import json
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()], done


def test_the_admin_cli_grants_lists_explains_and_revokes(steward_store):
    address, _url, _tmp = steward_store
    rows, _ = admin_cli(address, "grant", "--privileges", "select", "--table", "tpc.dl_tpc_item",
                        "--role", "marketing", "--columns", "i_item_sk,i_category",
                        "--where", "i_category = 'Books'", "--name", "marketing_books")
    version = int(rows[0]["policy_version"])
    rows, _ = admin_cli(address, "list-grants", "--role", "marketing")
    books = next(r for r in rows if r["name"] == "marketing_books")
    assert books["row_filter"] == "i_category = 'Books'" and books["columns"] == "i_item_sk, i_category"
    rows, _ = admin_cli(address, "effective-access", "--role", "marketing", "--table", "tpc.dl_tpc_item")
    access = {r["column"]: r["access"] for r in rows}
    assert access["i_category"] == "visible" and access["i_brand"] == "hidden"
    # In force for a Flight SQL query at once.
    with connect(address, "david") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT DISTINCT i_category FROM tpc.dl_tpc_item")
        assert cursor.fetch_arrow_table().to_pylist() == [{"i_category": "Books"}]
    rows, _ = admin_cli(address, "revoke", "--privileges", "select", "--table", "tpc.dl_tpc_item",
                        "--role", "marketing")
    assert int(rows[0]["policy_version"]) == version + 1
    rows, _ = admin_cli(address, "policy-version")
    assert int(rows[0]["policy_version"]) == version + 1
    # Refusals come back as the API's status, naming the privilege.
    _, done = admin_cli(address, "create-role", "x", user="david", password="david-pass", check=False)
    assert done.returncode != 0 and "ADMINISTER" in done.stderr, done.stderr
    rows, _ = admin_cli(address, "health", password="")
    assert rows[0]["status"] == "serving" and rows[0]["policy_source"] == "sqlite"


def test_a_statement_prepared_before_a_revoke_is_refused_once_its_columns_change(steward_store):
    address, _url, _tmp = steward_store
    execute(address, ["GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE sales "
                      "COLUMNS (c_customer_sk, c_email_address) AS sales_customers"])
    sql = "SELECT * FROM tpc.dl_tpc_customer"
    with connect(address, "tina") as conn:
        cursor = conn.cursor()
        cursor.adbc_prepare(sql)
        # Another change leaves its columns alone: it runs.
        execute(address, ["CREATE ROLE bystander"])
        cursor.execute(sql)
        assert cursor.fetch_arrow_table().column_names == ["c_customer_sk", "c_email_address"]
        # The e-mail column is revoked: the prepared statement is refused.
        execute(address, ["REVOKE GRANT sales_customers",
                          "GRANT SELECT ON TABLE tpc.dl_tpc_customer TO ROLE sales COLUMNS (c_customer_sk)"])
        with pytest.raises(adbc_driver_manager.Error, match="changed since this statement was prepared"):
            cursor.execute(sql)
            cursor.fetch_arrow_table()


def test_the_admin_cli_governs_by_tags(steward_store):
    """Tags through the administration API's RPCs, from `lakegate admin tag`:
    a tag defined, set on a table and a column, a grant on a tag expression,
    a tag mask and a tag row filter, listed, explained, and taken back."""
    address, _url, _tmp = steward_store
    admin_cli(address, "tag", "create", "domain", "--values", "products,customers")
    admin_cli(address, "tag", "create", "pii", "--values", "email")
    admin_cli(address, "tag", "set", "--table", "tpc.dl_tpc_item", "--tag", "domain=products")
    admin_cli(address, "tag", "set", "--table", "tpc.dl_tpc_item", "--column", "i_brand", "--tag", "pii=email")
    admin_cli(address, "grant", "--privileges", "select", "--tagged", "domain = 'products'",
              "--role", "marketing", "--name", "marketing_products")
    admin_cli(address, "tag", "mask", "--tagged", "pii = 'email'", "--mask", "redact",
              "--role", "marketing", "--name", "marketing_pii")
    admin_cli(address, "tag", "row-filter", "--tagged", "domain = 'products'", "--role", "marketing",
              "--where", "i_category = 'Books'", "--name", "marketing_books_only")

    definitions, _ = admin_cli(address, "tag", "list")
    assert {d["key"]: d["values"] for d in definitions} == {"domain": "customers, products", "pii": "email"}
    on_table, _ = admin_cli(address, "tag", "list", "--table", "tpc.dl_tpc_item")
    assert {"resource": "column i_brand", "key": "pii", "value": "email", "set_on": "column"} in on_table
    assert {"resource": "table", "key": "domain", "value": "products", "set_on": "table"} in on_table
    access, _ = admin_cli(address, "effective-access", "--role", "marketing", "--table", "tpc.dl_tpc_item")
    brand = next(row for row in access if row["column"] == "i_brand")
    assert brand["access"] == "masked: redact", access
    rows = query(address, "david", "SELECT DISTINCT i_category, i_brand FROM tpc.dl_tpc_item").to_pylist()
    assert rows and {r["i_category"] for r in rows} == {"Books"}
    assert {r["i_brand"] for r in rows} <= {"REDACTED", None}, rows[:3]

    # Refusals: a non-administrator, a tag still set, a value not defined.
    _, done = admin_cli(address, "tag", "create", "tier", "--values", "gold",
                        user="sam", password="sam-secret-pass", check=False)
    assert done.returncode != 0 and "ADMINISTER" in done.stderr, done.stderr
    _, done = admin_cli(address, "tag", "drop", "pii", check=False)
    assert done.returncode != 0 and "still set on column tpc.dl_tpc_item.i_brand" in done.stderr, done.stderr
    _, done = admin_cli(address, "tag", "set", "--database", "tpc", "--tag", "domain=sales", check=False)
    assert done.returncode != 0 and "no value 'sales'" in done.stderr, done.stderr

    # Taken back: the role no longer reads the table.
    admin_cli(address, "tag", "drop-row-filter", "marketing_books_only")
    admin_cli(address, "tag", "drop-mask", "marketing_pii")
    admin_cli(address, "tag", "unset", "--table", "tpc.dl_tpc_item", "--keys", "domain")
    access, _ = admin_cli(address, "effective-access", "--role", "marketing", "--table", "tpc.dl_tpc_item")
    assert access == [], access
