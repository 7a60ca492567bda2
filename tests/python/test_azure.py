"""An Azure storage location against Azurite (the Azure storage emulator,
installed from npm by scripts/test and started here on loopback): the demo
copied with `lakegate demo --storage az://...` (the standard AZURE_*
variables), then served from a catalog whose location names its account key
variable, with the same answers as from local disk."""

import os
import pathlib
import shutil
import subprocess
import time

import pytest
from azure.storage.blob import BlobServiceClient

from clients import query
from conftest import BINARY, CATALOG, start_server
from test_s3 import SCENARIO, free_port, rows

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE = pathlib.Path(os.environ.get("LAKEGATE_AZURITE", "")) / "node_modules" / ".bin" / "azurite-blob"


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    if not AZURITE.exists():
        pytest.fail(f"Azurite is not installed at {AZURITE} (scripts/test installs it)")
    port = free_port()
    server = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--silent",
         "--skipApiVersionCheck", "--location", str(tmp_path_factory.mktemp("azurite"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
    try:
        client = BlobServiceClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};")
        deadline = time.time() + 60
        while True:
            try:
                client.create_container("lake")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        yield endpoint, port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def azure_server(azurite, data_dir, tmp_path_factory):
    endpoint, port = azurite
    env = {
        "PATH": os.environ["PATH"],
        "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
        "AZURE_STORAGE_ACCOUNT_KEY": KEY,
        "AZURE_STORAGE_USE_EMULATOR": "true",
        "AZURITE_BLOB_STORAGE_URL": f"http://127.0.0.1:{port}",
    }
    result = subprocess.run(
        [BINARY, "demo", "--no-serve", "--scale", "0.01", "--data-dir", str(data_dir),
         "--catalog", CATALOG, "--storage", "az://lake/demo"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "demo data copied to az://lake/demo/" in result.stdout

    catalog = tmp_path_factory.mktemp("azure-catalog")
    for name in ["principals.toml", "grants.toml"]:
        shutil.copy(pathlib.Path(CATALOG) / name, catalog / name)
    text = (pathlib.Path(CATALOG) / "catalog.toml").read_text()
    text = text.replace('url = "${data_dir}/tpc"', "\n".join([
        'url = "az://lake/demo/tpc"',
        f'account = "{ACCOUNT}"',
        f'endpoint = "{endpoint}"',
        "allow_http = true",
        'credentials = "variables"',
        'access_key_env = "LAKE_AZURE_KEY"',
    ]))
    (catalog / "catalog.toml").write_text(text)
    server_env = {"PATH": os.environ["PATH"], "LAKE_AZURE_KEY": KEY}
    with start_server(tmp_path_factory.mktemp("azure-state"), catalog=catalog, env=server_env) as address:
        yield address


def test_the_demo_scenario_from_azure_matches_local_disk(azure_server, server):
    for user, role, sql in SCENARIO:
        from_azure = query(azure_server, user, sql, role=role)
        local = query(server, user, sql, role=role)
        assert from_azure.num_rows > 0, sql
        assert rows(from_azure) == rows(local), sql
