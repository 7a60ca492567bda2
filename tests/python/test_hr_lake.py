"""The hr lake (tests/fixtures/hr) through the real server, every role's
whole table checked against DuckDB over the same Parquet files, with Lake
Formation's semantics written out by hand: a row is visible when any grant
admits it; a cell shows the value of the first admitting grant that exposes
its column, unmasked grants before masking ones; otherwise it is NULL. Every
masked column holds NULLs, and row filters use IN, NOT IN, correlated EXISTS
and scalar subqueries."""

import duckdb
import pyarrow.compute as pc
import pytest

from clients import connect

# DuckDB's forms of Lakegate's built-in masks.
FIRST_4 = "CASE WHEN {c} IS NULL THEN NULL WHEN length({c}) <= 4 THEN repeat('X', length({c})) ELSE left({c}, 4) || repeat('X', length({c}) - 4) END"
LAST_4 = "CASE WHEN {c} IS NULL THEN NULL WHEN length({c}) <= 4 THEN repeat('X', length({c})) ELSE repeat('X', length({c}) - 4) || right({c}, 4) END"
HASH = "sha256({c})"
REDACT = "CASE WHEN {c} IS NULL THEN NULL ELSE 'REDACTED' END"

US = "department IN (SELECT name FROM departments WHERE region = 'US')"
EU = "EXISTS (SELECT 1 FROM departments d WHERE d.name = e.department AND d.region = 'EU')"
HIGH_PAID = "salary > 150000"
OUTSIDE_US = "department NOT IN (SELECT name FROM departments WHERE region = 'US')"
ABOVE_AVERAGE = "salary > (SELECT avg(salary) FROM employees)"
TEAM = "manager_id = 7"

EXPECTED = {
    "us_directory": f"""SELECT id, name,
        CASE WHEN {US} THEN email END AS email, CASE WHEN {US} THEN phone END AS phone,
        CASE WHEN {US} THEN title END AS title, department, CASE WHEN {US} THEN salary END AS salary,
        CASE WHEN {US} THEN hired END AS hired, CASE WHEN {US} THEN manager_id END AS manager_id
        FROM employees e""",
    "masked": f"""SELECT id, {HASH.format(c='name')} AS name, {FIRST_4.format(c='email')} AS email,
        {LAST_4.format(c='phone')} AS phone, {REDACT.format(c='title')} AS title, department,
        CAST(NULL AS BIGINT) AS salary, CAST(date_trunc('year', hired) AS DATE) AS hired, manager_id
        FROM employees e""",
    "eu_and_high_paid": f"""SELECT id,
        CASE WHEN {EU} THEN name END AS name,
        CASE WHEN {EU} THEN email WHEN {HIGH_PAID} THEN {REDACT.format(c='email')} END AS email,
        CASE WHEN {EU} THEN phone END AS phone, CASE WHEN {EU} THEN title END AS title,
        CASE WHEN {EU} THEN department END AS department,
        CASE WHEN {HIGH_PAID} THEN salary END AS salary,
        CASE WHEN {EU} THEN hired END AS hired, CASE WHEN {EU} THEN manager_id END AS manager_id
        FROM employees e WHERE ({EU}) OR ({HIGH_PAID})""",
    "outside_us": f"""SELECT id,
        CASE WHEN {ABOVE_AVERAGE} THEN name END AS name,
        CASE WHEN {ABOVE_AVERAGE} THEN email WHEN {OUTSIDE_US} THEN {HASH.format(c='email')} END AS email,
        CASE WHEN {ABOVE_AVERAGE} THEN phone END AS phone, CASE WHEN {ABOVE_AVERAGE} THEN title END AS title,
        department,
        CASE WHEN {ABOVE_AVERAGE} THEN salary END AS salary, CASE WHEN {ABOVE_AVERAGE} THEN hired END AS hired,
        CASE WHEN {ABOVE_AVERAGE} THEN manager_id END AS manager_id
        FROM employees e WHERE ({OUTSIDE_US}) OR ({ABOVE_AVERAGE})""",
    "team": f"""SELECT id, CASE WHEN {TEAM} THEN name END AS name, CASE WHEN {TEAM} THEN manager_id END AS manager_id
        FROM employees e""",
}


@pytest.fixture(scope="module")
def duck(hr_data_dir):
    connection = duckdb.connect()
    for table in ["employees", "departments"]:
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{hr_data_dir}/{table}/*.parquet')")
    return connection


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_every_role_sees_what_its_grants_say(hr_server, duck, role):
    with connect(hr_server, "hana", role=role) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT * FROM employees")
        got = cursor.fetch_arrow_table()
    expected = duck.execute(EXPECTED[role]).to_arrow_table()
    assert got.column_names == expected.column_names
    key = lambda row: row["id"]
    assert sorted(got.to_pylist(), key=key) == sorted(expected.to_pylist(), key=key)


def test_masks_never_change_whether_a_value_is_null(hr_server, duck):
    with connect(hr_server, "hana", role="masked") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT * FROM employees ORDER BY id")
        got = cursor.fetch_arrow_table()
    raw = duck.execute("SELECT * FROM employees ORDER BY id").to_arrow_table()
    for column in ["name", "email", "phone", "title", "hired"]:
        assert got.column(column).null_count == raw.column(column).null_count > 0, column
        assert pc.is_null(got.column(column)).equals(pc.is_null(raw.column(column))), column
        assert pc.sum(pc.equal(got.column(column).cast("string"), "")).as_py() in (None, 0), column


def test_a_null_department_is_not_outside_the_us(hr_server, duck):
    """NOT IN over a NULL is NULL, not true, even beside another grant."""
    with connect(hr_server, "hana", role="outside_us") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT id FROM employees WHERE department IS NULL ORDER BY id")
        got = [row[0] for row in cursor.fetchall()]
    expected = [row[0] for row in duck.execute(f"SELECT id FROM employees e WHERE department IS NULL AND {ABOVE_AVERAGE} ORDER BY id").fetchall()]
    assert got == expected
