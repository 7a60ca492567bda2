"""The policy store behind `lakegate serve --store`: SQLite (a file) and,
when the test script has started one, PostgreSQL (LAKEGATE_TEST_POSTGRES,
the URL of a server whose user may create databases): applying a catalog
directory at start, persistence across restarts, bootstrapping an empty
store, and `catalog export` back to a directory that serves the same
answers."""

import os
import subprocess
import uuid

import pytest

from clients import connect, query
from conftest import BINARY, CATALOG, start_server

# What the demo's users see, compared between a declarative server and a
# server on a store: rows, columns and masked values.
QUERIES = [
    ("david", None, "SELECT * FROM dl_tpc_customer ORDER BY c_customer_sk"),
    ("tina", None, "SELECT ws_order_number, ws_item_sk FROM dl_tpc_web_sales ORDER BY 1, 2"),
    ("tina", "electronics", "SELECT i_item_sk, i_category FROM dl_tpc_item ORDER BY 1"),
    ("admin", None, "SELECT count(*) AS n FROM dl_tpc_customer_address"),
]

BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("LAKEGATE_TEST_POSTGRES") else [])


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A new, empty store of each backend."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'policy.db'}"
        return
    base = os.environ["LAKEGATE_TEST_POSTGRES"].rstrip("/")
    name = f"lakegate_test_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    yield f"{base}/{name}"
    subprocess.run(["psql", f"{base}/postgres", "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True)


def answers(address):
    return [query(address, user, sql, role=role).to_pylist() for user, role, sql in QUERIES]


def test_an_empty_store_refuses_to_start_and_says_how_to_bootstrap(data_dir, store_url):
    env = {k: v for k, v in os.environ.items() if k != "LAKEGATE_BOOTSTRAP_ADMIN"}
    done = subprocess.run(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--store", store_url],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode != 0
    assert "has no users" in done.stderr and "LAKEGATE_BOOTSTRAP_ADMIN=name:password" in done.stderr, done.stderr


def test_a_catalog_applied_to_a_store_serves_the_same_answers_after_restarts(
        server, data_dir, store_url, tmp_path):
    expected = answers(server)
    with start_server(data_dir, "--store", store_url) as address:
        assert answers(address) == expected
    # The store alone, after a restart: the policy persisted.
    command = ["--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--store", store_url]
    with start_server_without_catalog(command) as address:
        assert answers(address) == expected
    # Exported back to files, as a declarative catalog.
    exported = tmp_path / "exported"
    done = subprocess.run([BINARY, "catalog", "export", "--store", store_url, str(exported)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert "catalog.toml" in done.stdout
    with start_server(data_dir, catalog=exported) as address:
        assert answers(address) == expected


def test_the_first_administrator_comes_from_the_environment_only(data_dir, store_url):
    env = {**os.environ, "LAKEGATE_BOOTSTRAP_ADMIN": "root:first-admin-pass"}
    command = ["--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--store", store_url]
    with start_server_without_catalog(command, env=env, printed=True) as (address, printed):
        assert "first administrator 'root'" in "".join(printed)
        assert "first-admin-pass" not in "".join(printed)
        with connect(address, "root", password="first-admin-pass") as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT current_role() AS r")
            assert cursor.fetch_arrow_table().to_pylist() == [{"r": "lake_admin"}]
    # Once there is a user, the variable changes nothing.
    env = {**os.environ, "LAKEGATE_BOOTSTRAP_ADMIN": "intruder:x"}
    with start_server_without_catalog(command, env=env) as address:
        with pytest.raises(Exception, match="(?i)unauthenticated|invalid"):
            query(address, "intruder", "SELECT 1")


def start_server_without_catalog(flags, env=None, printed=False):
    """`lakegate serve` with only `flags` (no --catalog)."""
    from conftest import start_serving

    serving = start_serving(["serve", *flags], env=env)
    if printed:
        return serving
    return _address_only(serving)


class _address_only:
    def __init__(self, serving):
        self.serving = serving

    def __enter__(self):
        address, _ = self.serving.__enter__()
        return address

    def __exit__(self, *exc):
        return self.serving.__exit__(*exc)
