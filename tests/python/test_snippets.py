"""The client code users paste: the Python snippets of the README and of
docs/clients.md, each document's run in order as the cells of one notebook, and the snippets `lakegate demo` prints, run as
scripts, all against the real server. Every result a snippet leaves behind
is checked against DuckDB's reading of the Parquet files, so a snippet that
stops working, or starts returning rows its role may not see, fails here."""

import functools
import hashlib
import re
import subprocess
import sys

import duckdb
import pyarrow as pa
import pytest

from conftest import CATALOG, ROOT, raw, start_serving

README = ROOT / "README.md"
CLIENTS = ROOT / "docs" / "clients.md"
DOCUMENTED_ADDRESS = "grpc://127.0.0.1:50051"


@functools.cache
def electronics_item_keys(data_dir):
    rows = duckdb.sql(
        f"SELECT i_item_sk FROM {raw(data_dir, 'dl_tpc_item')} WHERE i_category = 'Electronics' ORDER BY 1"
    ).fetchall()
    assert rows, "the demo data has Electronics items"
    return [row[0] for row in rows]


def python_cells(document):
    return re.findall(r"^```python\n(.*?)^```", document.read_text(), flags=re.S | re.M)


# What each name a README cell defines must hold. A cell that defines none of
# these names fails the test: every documented result is checked.
def check_categories(value, data_dir):
    assert value.to_pylist() == [{"i_category": "Electronics", "count(*)": len(electronics_item_keys(data_dir))}]


def check_items(value, data_dir):
    assert type(value).__module__.startswith("pandas")
    assert sorted(value["i_item_sk"].tolist()) == electronics_item_keys(data_dir)


def check_brands(value, data_dir):
    assert type(value).__module__.startswith("polars")
    assert value["items"].sum() == len(electronics_item_keys(data_dir))


def check_every_item(value, data_dir):
    assert sorted(value.column("i_item_sk").to_pylist()) == electronics_item_keys(data_dir)
    assert set(value.column("i_category").to_pylist()) == {"Electronics"}


def check_item_count(value, data_dir):
    assert value.column(0).to_pylist() == [len(electronics_item_keys(data_dir))]


def check_first_items(value, data_dir):
    expected = [key for key in electronics_item_keys(data_dir) if key < 500]
    assert expected, "some Electronics items have keys below 500"
    assert sorted(value.column(0).to_pylist()) == expected


def check_parts(value, data_dir):
    # The admin reads every row, whichever parts the plan split them into.
    expected = duckdb.sql(f"SELECT * FROM {raw(data_dir, 'dl_tpc_web_sales')}")
    assert sum(part.num_rows for part in value) == len(expected)
    assert pa.concat_tables(value).column_names == expected.columns


CHECKS = {
    "categories": check_categories,
    "items": check_items,
    "brands": check_brands,
    "every_item": check_every_item,
    "item_count": check_item_count,
    "first_items": check_first_items,
    "parts": check_parts,
}


@pytest.mark.parametrize("document", [README, CLIENTS], ids=["README", "docs/clients.md"])
def test_the_documented_snippets_run_as_one_notebook(server, data_dir, document):
    cells = python_cells(document)
    assert cells, f"{document.name}'s Python snippets were found"
    notebook = {}
    checked = set()
    for number, cell in enumerate(cells, 1):
        before = dict(notebook)
        exec(compile(cell.replace(DOCUMENTED_ADDRESS, server), f"{document.name} python cell {number}", "exec"), notebook)
        defined = {name for name, value in notebook.items() if before.get(name, notebook) is not value}
        results = defined & CHECKS.keys()
        assert results, f"{document.name} python cell {number} leaves no checked result (it defines {sorted(defined)})"
        for name in results:
            CHECKS[name](notebook[name], data_dir)
        checked |= results
    # The client manual shows every kind of result; the README one of them.
    assert checked == CHECKS.keys() if document == CLIENTS else checked


def demo_snippets(lines):
    """The indented code blocks `lakegate demo` prints before it serves."""
    snippets, current = [], []
    for line in lines:
        if line.startswith("    "):
            current.append(line[4:])
        elif current:
            snippets.append("".join(current))
            current = []
    return snippets


def test_the_snippets_the_demo_prints_run_as_printed(data_dir):
    command = ["demo", "--scale", "0.01", "--data-dir", str(data_dir), "--catalog", CATALOG, "--listen", "127.0.0.1:0"]
    with start_serving(command) as (address, printed):
        shown = printed[printed.index(next(line for line in printed if "Connect from" in line)):]
        adbc, pyarrow_flight = demo_snippets(shown)
        assert address in adbc and address in pyarrow_flight

        ran = subprocess.run([sys.executable, "-c", adbc], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert '["Electronics"]' in ran.stdout
        assert f"[[{len(electronics_item_keys(data_dir))}]]" in ran.stdout

        ran = subprocess.run([sys.executable, "-c", pyarrow_flight], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        # David's view: no names, and the e-mail addresses hashed.
        assert "c_first_name" not in ran.stdout
        hashes = re.findall(r'"([0-9a-f]{64})"', ran.stdout)
        assert hashes, ran.stdout
        emails = duckdb.sql(
            f"SELECT c_email_address FROM {raw(data_dir, 'dl_tpc_customer')} WHERE c_email_address IS NOT NULL"
        ).fetchall()
        assert set(hashes) <= {hashlib.sha256(email.encode()).hexdigest() for (email,) in emails}
