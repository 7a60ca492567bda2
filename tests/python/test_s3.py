"""S3 data lakes against a real S3-compatible server (moto, started here on
loopback with IAM authentication on), through a fault proxy the tests
control, served by the real binary to the ADBC driver.

The lake: bucket `lake-a` (credentials of IAM user `lake-a-reader`, files
written with SSE-S3) holds customer and web_sales; bucket `lake-b` (user
`lake-b-reader`, SSE-KMS with a moto KMS key) holds customer_address and
item. Each user may touch only its own bucket, so a query joining the two,
or a row filter of one table reading the other, needs both credentials.
Expected answers come from the same demo scenario served from local disk.
"""

import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import adbc_driver_manager
import boto3
import botocore.exceptions
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clients import connect, query
from conftest import BINARY, CATALOG, start_server
from s3_fault_proxy import FaultProxy

REGION = "us-east-1"
TABLES_A = ["dl_tpc_customer", "dl_tpc_web_sales"]
TABLES_B = ["dl_tpc_customer_address", "dl_tpc_item", "category_counts"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3:
    """The moto server, its IAM users and the proxy in front of it."""

    def __init__(self, port, proxy, keys, kms_key):
        self.direct = f"http://127.0.0.1:{port}"
        self.proxy = proxy
        self.endpoint = f"http://127.0.0.1:{proxy.port}"
        self.keys = keys
        self.kms_key = kms_key

    def client(self, service, user="inspector", endpoint=None):
        key_id, secret = self.keys[user]
        return boto3.client(
            service,
            endpoint_url=endpoint or self.direct,
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )

    def aws_env(self, user, **extra):
        """The standard AWS variables for `user` through the proxy."""
        key_id, secret = self.keys[user]
        return {
            "PATH": os.environ["PATH"],
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            **extra,
        }


def bucket_policy(bucket):
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        }],
    })


@pytest.fixture(scope="module")
def s3():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        # Set up before authentication is switched on.
        setup = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                     aws_access_key_id="setup", aws_secret_access_key="setup")
        iam = boto3.client("iam", **setup)
        keys = {}
        policies = {
            "lake-a-reader": bucket_policy("lake-a"),
            "lake-b-reader": bucket_policy("lake-b"),
            "inspector": json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:*", "iam:*", "kms:*"], "Resource": "*"}]}),
        }
        for user, policy in policies.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="access", PolicyDocument=policy)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        kms_key = boto3.client("kms", **setup).create_key(Description="lake-b")["KeyMetadata"]["KeyId"]
        s3_setup = boto3.client("s3", **setup)
        for bucket in ["lake-a", "lake-b"]:
            s3_setup.create_bucket(Bucket=bucket)
        # From now on every request is authenticated and authorized.
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/moto-api/reset-auth", data=b"0", method="POST",
            headers={"Content-Type": "text/plain"}))
        proxy = FaultProxy("127.0.0.1", port)
        yield S3(port, proxy, keys, kms_key)
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_demo(data_dir, s3, user, url, **env):
    """`lakegate demo --storage URL` as `user` (no serving)."""
    result = subprocess.run(
        [BINARY, "demo", "--no-serve", "--scale", "0.01", "--data-dir", str(data_dir),
         "--catalog", CATALOG, "--storage", url],
        env=s3.aws_env(user, **env), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def s3_lake(s3, data_dir):
    """The demo data copied to both buckets by `lakegate demo --storage`."""
    out_a = run_demo(data_dir, s3, "lake-a-reader", "s3://lake-a/demo",
                     AWS_SERVER_SIDE_ENCRYPTION="AES256")
    out_b = run_demo(data_dir, s3, "lake-b-reader", "s3://lake-b/demo",
                     AWS_SERVER_SIDE_ENCRYPTION="aws:kms", AWS_SSE_KMS_KEY_ID=s3.kms_key)
    return out_a, out_b


def storage_entry(name, bucket, user, s3, **settings):
    lines = [
        "[[storage]]",
        f'name = "{name}"',
        f'url = "s3://{bucket}/demo/tpc"',
        f'region = "{REGION}"',
        f'endpoint = "{s3.endpoint}"',
        'addressing = "path"',
        "allow_http = true",
        'credentials = "variables"',
        f'access_key_id_env = "{user.upper().replace("-", "_")}_KEY_ID"',
        f'secret_access_key_env = "{user.upper().replace("-", "_")}_SECRET"',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def two_bucket_catalog(directory, s3, extra_a=None, extra_b=None):
    """The demo catalog with its tables split over the two buckets."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in ["principals.toml", "grants.toml"]:
        shutil.copy(pathlib.Path(CATALOG) / name, directory / name)
    text = '[catalog]\nname = "lakegate"\ndefault_database = "tpc"\n\n'
    text += storage_entry("lake_a", "lake-a", "lake-a-reader", s3, **(extra_a or {})) + "\n"
    text += storage_entry("lake_b", "lake-b", "lake-b-reader", s3, encryption="sse-kms",
                          kms_key_id=s3.kms_key, **(extra_b or {})) + "\n"
    text += '[[database]]\nname = "tpc"\n\n'
    for table in TABLES_A + TABLES_B:
        location = "lake_a" if table in TABLES_A else "lake_b"
        text += f'[[table]]\ndatabase = "tpc"\nname = "{table}"\nstorage = "{location}"\npath = "{table}/"\n\n'
    (directory / "catalog.toml").write_text(text)
    return directory


def server_env(s3, **overrides):
    env = {"PATH": os.environ["PATH"]}
    for user in ["lake-a-reader", "lake-b-reader"]:
        key_id, secret = s3.keys[user]
        prefix = user.upper().replace("-", "_")
        env[f"{prefix}_KEY_ID"] = key_id
        env[f"{prefix}_SECRET"] = secret
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def s3_server(s3, s3_lake, data_dir, tmp_path_factory):
    catalog = two_bucket_catalog(tmp_path_factory.mktemp("catalog"), s3,
                                 extra_a={"request_timeout": "3s", "retry_timeout": "8s"},
                                 extra_b={"request_timeout": "3s", "retry_timeout": "8s"})
    with start_server(tmp_path_factory.mktemp("state"), "--query-timeout", "30",
                      catalog=catalog, env=server_env(s3)) as address:
        yield address


SCENARIO = [
    ("david", None, "SELECT * FROM dl_tpc_customer"),
    ("tina", "sales", "SELECT ws_order_number, ws_item_sk, ws_net_paid FROM dl_tpc_web_sales"),
    ("tina", "electronics", "SELECT * FROM dl_tpc_item"),
    ("admin", None, "SELECT * FROM dl_tpc_customer_address"),
    # One query, two buckets, two credentials.
    ("admin", None, "SELECT i_category, count(*) AS n, sum(ws_net_paid) AS paid "
                    "FROM dl_tpc_web_sales JOIN dl_tpc_item ON ws_item_sk = i_item_sk GROUP BY 1"),
]


def rows(table):
    return sorted(table.to_pylist(), key=lambda row: json.dumps(row, sort_keys=True, default=str))


def test_demo_storage_copies_the_demo_under_the_prefix_only(s3, s3_lake, data_dir):
    assert "demo data copied to s3://lake-a/demo/" in s3_lake[0]
    keys = [o["Key"] for o in s3.client("s3").list_objects_v2(Bucket="lake-a")["Contents"]]
    assert keys and all(key.startswith("demo/tpc/") for key in keys)
    assert "demo/tpc/_lakegate_demo.json" in keys
    # A second run finds the copy complete and copies nothing: the one object
    # it writes is the walkthrough's row in category_counts.
    s3.proxy.reset_counts()
    out = run_demo(data_dir, s3, "lake-a-reader", "s3://lake-a/demo")
    assert "reusing demo data in s3://lake-a/demo/" in out
    after = [o["Key"] for o in s3.client("s3").list_objects_v2(Bucket="lake-a")["Contents"]]
    added = sorted(set(after) - set(keys))
    assert len(added) == 1 and added[0].startswith("demo/tpc/category_counts/part-"), added
    assert s3.proxy.snapshot().get("PUT", 0) == 1


def test_the_demo_scenario_from_two_buckets_matches_local_disk(s3_server, server):
    for user, role, sql in SCENARIO:
        from_s3 = query(s3_server, user, sql, role=role)
        local = query(server, user, sql, role=role)
        assert from_s3.schema == local.schema, sql
        assert from_s3.num_rows > 0, sql
        assert rows(from_s3) == rows(local), sql


def test_a_row_filter_reading_the_other_bucket(s3_server, server):
    # sales' row filter on web_sales (lake-a) reads customer_address (lake-b).
    sql = "SELECT count(*) AS n FROM dl_tpc_web_sales"
    assert query(s3_server, "tina", sql).to_pylist() == query(server, "tina", sql).to_pylist()


def test_denied_stays_denied_from_s3(s3_server):
    with pytest.raises(Exception, match="does not exist or role 'marketing' may not read it"):
        query(s3_server, "david", "SELECT * FROM dl_tpc_customer_address LIMIT 10")


def test_writes_carry_each_location_encryption(s3, s3_lake):
    inspector = s3.client("s3")
    for key in ["demo/tpc/dl_tpc_item/part-0.parquet", "demo/tpc/_lakegate_demo.json"]:
        head = inspector.head_object(Bucket="lake-b", Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert s3.kms_key in head["SSEKMSKeyId"], key
    head = inspector.head_object(Bucket="lake-a", Key="demo/tpc/dl_tpc_web_sales/part-0.parquet")
    assert head["ServerSideEncryption"] == "AES256"


@pytest.fixture()
def writable(s3, s3_lake, tmp_path):
    """A server over the two buckets plus `tpc.written` (in lake-b, SSE-KMS,
    one object of one row), which `lake_admin` may insert into; the
    locations time requests out after 3 s and give up retrying after 8 s."""
    import io
    inspector = s3.client("s3")
    for listed in inspector.list_objects_v2(Bucket="lake-b", Prefix="demo/tpc/written/").get("Contents", []):
        inspector.delete_object(Bucket="lake-b", Key=listed["Key"])
    first = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([1], pa.int64()), "tag": ["first"]}), first)
    inspector.put_object(Bucket="lake-b", Key="demo/tpc/written/part-0.parquet", Body=first.getvalue())
    timeouts = {"request_timeout": "3s", "retry_timeout": "8s"}
    catalog = two_bucket_catalog(tmp_path / "catalog", s3, extra_a=timeouts, extra_b=timeouts)
    with open(catalog / "catalog.toml", "a") as text:
        text.write('[[table]]\ndatabase = "tpc"\nname = "written"\nstorage = "lake_b"\npath = "written/"\n')
    (catalog / "writes.toml").write_text(
        '[[grant]]\nname = "admin_writes"\nrole = "lake_admin"\non = "tpc.written"\nprivileges = ["insert"]\n')
    with start_server(tmp_path / "state", catalog=catalog, env=server_env(s3)) as address:
        yield address, inspector


def written_keys(inspector):
    return sorted(o["Key"] for o in
                  inspector.list_objects_v2(Bucket="lake-b", Prefix="demo/tpc/written/").get("Contents", []))


def written_count(address):
    return query(address, "admin", "SELECT count(*) FROM tpc.written").column(0)[0].as_py()


def insert(address, sql):
    with connect(address, "admin") as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()[0][0]


def test_written_objects_carry_their_location_encryption(s3, writable):
    """An INSERT into a table of the SSE-KMS bucket writes its object through
    that location: its credentials, and its KMS key on the new object."""
    address, inspector = writable
    assert insert(address, "INSERT INTO tpc.written VALUES (2, 'b'), (3, 'c')") == 2
    assert query(address, "admin", "SELECT id FROM tpc.written ORDER BY id").column("id").to_pylist() == [1, 2, 3]
    written = [key for key in written_keys(inspector) if not key.endswith("/part-0.parquet")]
    assert len(written) == 1 and written[0].endswith(".parquet"), written
    head = inspector.head_object(Bucket="lake-b", Key=written[0])
    assert head["ServerSideEncryption"] == "aws:kms", head
    assert s3.kms_key in head["SSEKMSKeyId"], head


def test_a_write_killed_midway_leaves_nothing_and_a_retry_succeeds(s3, writable):
    """A write large enough for a multipart upload loses its second part to
    connection resets past the retry timeout: the statement fails with
    UNAVAILABLE, the upload is aborted, readers see the table as it was;
    the same statement then succeeds."""
    address, inspector = writable
    before = written_keys(inspector)
    # About 14 MB of Parquet (hex digests compress little): two parts, the
    # first let through, the second reset until the retries give up.
    big = ("INSERT INTO tpc.written SELECT value, md5(CAST(value AS VARCHAR)) || md5(CAST(-value AS VARCHAR)) "
           "FROM generate_series(1, 400000)")
    s3.proxy.reset_counts()
    s3.proxy.reset_uploads(10_000, after=1)
    try:
        with pytest.raises(adbc_driver_manager.Error) as failure:
            insert(address, big)
    finally:
        s3.proxy.clear()
    message = str(failure.value)
    assert "UNAVAILABLE" in message or "Unavailable" in message, message
    assert "nothing was written" in message, message
    assert written_keys(inspector) == before
    open_uploads = inspector.list_multipart_uploads(Bucket="lake-b", Prefix="demo/tpc/written/").get("Uploads")
    assert not open_uploads, [upload["Key"] for upload in open_uploads]
    assert written_count(address) == 1
    assert insert(address, big) == 400_000
    assert written_count(address) == 400_001


@pytest.fixture()
def delta_writable(s3, s3_lake, tmp_path):
    """A server over the two buckets plus `tpc.events`, a Delta table in
    lake-b (SSE-KMS) of one row at version 0 (written by deltalake locally,
    then uploaded), which `lake_admin` may insert into."""
    import deltalake
    inspector = s3.client("s3")
    for listed in inspector.list_objects_v2(Bucket="lake-b", Prefix="demo/tpc/events/").get("Contents", []):
        inspector.delete_object(Bucket="lake-b", Key=listed["Key"])
    local = tmp_path / "events"
    deltalake.write_deltalake(str(local), pa.table({"id": pa.array([1], pa.int64()), "tag": ["first"]}))
    for path in local.rglob("*"):
        if path.is_file():
            inspector.upload_file(str(path), "lake-b", f"demo/tpc/events/{path.relative_to(local)}")
    timeouts = {"request_timeout": "3s", "retry_timeout": "8s"}
    catalog = two_bucket_catalog(tmp_path / "catalog", s3, extra_a=timeouts, extra_b=timeouts)
    with open(catalog / "catalog.toml", "a") as text:
        text.write('[[table]]\ndatabase = "tpc"\nname = "events"\nstorage = "lake_b"\npath = "events/"\n'
                   'format = "delta"\n')
    (catalog / "writes.toml").write_text(
        '[[grant]]\nname = "admin_writes"\nrole = "lake_admin"\non = "tpc.events"\nprivileges = ["insert"]\n')
    with start_server(tmp_path / "state", catalog=catalog, env=server_env(s3)) as address:
        yield address, inspector


def event_keys(inspector):
    return sorted(o["Key"] for o in
                  inspector.list_objects_v2(Bucket="lake-b", Prefix="demo/tpc/events/").get("Contents", []))


def test_a_delta_commit_on_s3_carries_the_location_encryption(s3, delta_writable):
    """An INSERT into a Delta table of the SSE-KMS bucket: its data file and
    its commit are written through that location (its credentials, its KMS
    key), the commit by a conditional PUT."""
    address, inspector = delta_writable
    before = event_keys(inspector)
    assert insert(address, "INSERT INTO tpc.events VALUES (2, 'b'), (3, 'c')") == 2
    assert query(address, "admin", "SELECT id FROM tpc.events ORDER BY id").column("id").to_pylist() == [1, 2, 3]
    added = sorted(set(event_keys(inspector)) - set(before))
    assert [key for key in added if key.endswith(".json")] == ["demo/tpc/events/_delta_log/00000000000000000001.json"]
    data_files = [key for key in added if key.endswith(".parquet")]
    assert len(data_files) == 1, added
    for key in [*data_files, "demo/tpc/events/_delta_log/00000000000000000001.json"]:
        head = inspector.head_object(Bucket="lake-b", Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", (key, head)
        assert s3.kms_key in head["SSEKMSKeyId"], (key, head)
    # The version before the write, under the same policy.
    assert query(address, "admin", 'SELECT id FROM tpc."events@v0"').column("id").to_pylist() == [1]


def test_a_delta_write_killed_midway_commits_nothing_and_a_retry_succeeds(s3, delta_writable):
    """Every PUT to the bucket is reset past the retry timeout while a write
    runs: the statement fails with UNAVAILABLE, no version is committed and
    readers see the table as it was; the same statement then succeeds."""
    address, inspector = delta_writable
    statement = "INSERT INTO tpc.events SELECT value + 10, 'x' FROM generate_series(1, 1000)"
    s3.proxy.reset_counts()
    s3.proxy.reset_uploads(10_000)
    try:
        with pytest.raises(adbc_driver_manager.Error) as failure:
            insert(address, statement)
    finally:
        s3.proxy.clear()
    message = str(failure.value)
    assert "UNAVAILABLE" in message or "Unavailable" in message, message
    assert "nothing was written" in message, message
    assert not [key for key in event_keys(inspector) if key.endswith("00000000000000000001.json")]
    assert query(address, "admin", "SELECT count(*) FROM tpc.events").column(0)[0].as_py() == 1
    assert insert(address, statement) == 1000
    assert query(address, "admin", "SELECT count(*) FROM tpc.events").column(0)[0].as_py() == 1001


def test_each_user_reaches_only_its_bucket(s3):
    # The premise of the two-bucket tests: one set of credentials is not enough.
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3.client("s3", user="lake-a-reader").list_objects_v2(Bucket="lake-b")


def test_catalog_check_names_the_location_with_wrong_credentials_and_never_the_secret(s3, s3_lake, tmp_path):
    catalog = two_bucket_catalog(tmp_path / "catalog", s3)
    wrong_secret = "wrong-secret-value-0123456789"
    env = server_env(s3, LAKE_B_READER_SECRET=wrong_secret)
    started = time.monotonic()
    result = subprocess.run([BINARY, "catalog", "check", str(catalog), "--data-dir", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "storage location 'lake_b'" in result.stderr
    assert "lake_a" not in result.stderr
    assert wrong_secret not in result.stderr + result.stdout
    assert s3.keys["lake-b-reader"][1] not in result.stderr + result.stdout
    assert elapsed < 60


def test_catalog_check_refuses_inline_secrets(s3, tmp_path):
    catalog = two_bucket_catalog(tmp_path / "catalog", s3)
    text = (catalog / "catalog.toml").read_text()
    text = text.replace('credentials = "variables"', 'credentials = "variables"\nsecret_access_key = "abc123"', 1)
    (catalog / "catalog.toml").write_text(text)
    result = subprocess.run([BINARY, "catalog", "check", str(catalog)], env=server_env(s3),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "'secret_access_key' would put a secret in the catalog" in result.stderr
    assert "secret_access_key_env" in result.stderr
    assert "abc123" not in result.stderr


def test_revoked_credentials_fail_only_their_location(s3, s3_server):
    # The location's IAM user loses its permission while the server runs
    # (moto ignores an access key's Inactive status, so the policy goes).
    iam = s3.client("iam")
    iam.delete_user_policy(UserName="lake-b-reader", PolicyName="access")
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as failure:
            query(s3_server, "admin", "SELECT * FROM dl_tpc_item")
        assert time.monotonic() - started < 30
        message = str(failure.value)
        assert "UNAVAILABLE" in message or "Unavailable" in message, message
        assert "storage location 'lake_b'" in message, message
        assert s3.keys["lake-b-reader"][1] not in message
        # The other location is unaffected.
        assert query(s3_server, "admin", "SELECT count(*) FROM dl_tpc_customer").column(0)[0].as_py() > 0
    finally:
        iam.put_user_policy(UserName="lake-b-reader", PolicyName="access",
                            PolicyDocument=bucket_policy("lake-b"))
    assert query(s3_server, "admin", "SELECT count(*) FROM dl_tpc_item").column(0)[0].as_py() > 0


def test_a_location_reads_its_keys_from_a_shared_credentials_profile(s3, s3_lake, server, tmp_path):
    catalog = two_bucket_catalog(tmp_path / "catalog", s3)
    text = (catalog / "catalog.toml").read_text()
    variables = ('credentials = "variables"\naccess_key_id_env = "LAKE_B_READER_KEY_ID"\n'
                 'secret_access_key_env = "LAKE_B_READER_SECRET"')
    assert variables in text
    (catalog / "catalog.toml").write_text(text.replace(variables, 'credentials = "profile"\nprofile = "lake-b"'))
    key_id, secret = s3.keys["lake-b-reader"]
    (tmp_path / "credentials").write_text(
        f"[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
        f"[lake-b]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    env = server_env(s3, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    del env["LAKE_B_READER_KEY_ID"], env["LAKE_B_READER_SECRET"]
    with start_server(tmp_path / "state", catalog=catalog, env=env) as address:
        sql = "SELECT count(*) AS n FROM dl_tpc_item"
        assert query(address, "admin", sql).to_pylist() == query(server, "admin", sql).to_pylist()


def count_web_sales(address):
    return query(address, "admin", "SELECT count(*) FROM dl_tpc_web_sales WHERE ws_quantity > 0").column(0)[0].as_py()


@pytest.mark.parametrize("fault", ["throttle", "reset"])
def test_throttling_and_connection_resets_are_retried(fault, s3, s3_server, server):
    expected = count_web_sales(server)
    s3.proxy.reset_counts()
    getattr(s3.proxy, fault)(3)
    assert count_web_sales(s3_server) == expected
    assert s3.proxy.faults_served[fault] == 3


def test_slow_responses_time_out_and_are_retried(s3, s3_server, server):
    expected = count_web_sales(server)
    s3.proxy.reset_counts()
    s3.proxy.delay(2, seconds=5)  # past the locations' 3 s request timeout
    assert count_web_sales(s3_server) == expected
    assert s3.proxy.faults_served["delay"] == 2


def test_endless_throttling_is_reported_within_the_retry_timeout(s3, s3_server, server):
    s3.proxy.throttle(10_000)
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as failure:
            count_web_sales(s3_server)
        elapsed = time.monotonic() - started
    finally:
        s3.proxy.clear()
    message = str(failure.value)
    assert "storage location 'lake_a'" in message, message
    assert "UNAVAILABLE" in message or "Unavailable" in message, message
    assert elapsed < 30, elapsed
    # The server is healthy once the store is.
    assert count_web_sales(s3_server) == count_web_sales(server)


def test_a_query_never_hangs_past_its_timeout(s3, s3_lake, data_dir, tmp_path):
    catalog = two_bucket_catalog(tmp_path / "catalog", s3,
                                 extra_a={"request_timeout": "60s", "retry_timeout": "120s"})
    with start_server(tmp_path / "state", "--query-timeout", "5",
                      catalog=catalog, env=server_env(s3)) as address:
        s3.proxy.delay(10_000, seconds=30)
        try:
            started = time.monotonic()
            with pytest.raises(Exception, match="(?i)deadline|too long|longer than"):
                count_web_sales(address)
            assert time.monotonic() - started < 20
        finally:
            s3.proxy.clear()


MANY_FILES = 10_000
PARTITIONS = 10


@pytest.fixture(scope="module")
def many_objects(s3):
    """10,000 one-row Parquet objects under lake-a/many/, Hive-partitioned
    by `p`, uploaded directly to the server (not through Lakegate)."""
    import concurrent.futures
    import io
    client = s3.client("s3", user="lake-a-reader")

    def upload(i):
        buffer = io.BytesIO()
        pq.write_table(pa.table({"id": [i], "v": [i * 2]}), buffer)
        client.put_object(Bucket="lake-a", Key=f"many/p={i % PARTITIONS}/part-{i:05}.parquet",
                          Body=buffer.getvalue())

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(upload, range(MANY_FILES)))
    return MANY_FILES


def test_ten_thousand_objects_are_listed_in_pages_once_per_ttl(s3, s3_lake, many_objects, tmp_path):
    catalog = two_bucket_catalog(tmp_path / "catalog", s3)
    with open(catalog / "catalog.toml", "a") as f:
        f.write('[[storage]]\nname = "many"\nurl = "s3://lake-a/many"\n'
                f'region = "{REGION}"\nendpoint = "{s3.endpoint}"\naddressing = "path"\nallow_http = true\n'
                'credentials = "variables"\naccess_key_id_env = "LAKE_A_READER_KEY_ID"\n'
                'secret_access_key_env = "LAKE_A_READER_SECRET"\n\n'
                '[[table]]\ndatabase = "tpc"\nname = "many"\nstorage = "many"\npath = "/"\n'
                'partition_columns = [{ name = "p", type = "int" }]\n')
    # Reading 10,000 objects from moto takes a while: the listing TTL must
    # outlast the test.
    with start_server(tmp_path / "state", "--file-listing-ttl", "900",
                      catalog=catalog, env=server_env(s3)) as address:
        s3.proxy.reset_counts()
        # One partition: the table is listed once (in pages, and cached for
        # the file listing TTL), and only that partition's files are read.
        got = query(address, "admin", "SELECT count(*), sum(v) FROM many WHERE p = 3").to_pylist()[0]
        ids = [i for i in range(MANY_FILES) if i % PARTITIONS == 3]
        assert list(got.values()) == [len(ids), sum(i * 2 for i in ids)]
        one_partition = s3.proxy.snapshot()
        # ListObjectsV2 returns at most 1,000 keys a page; one read a file.
        assert one_partition.get("LIST", 0) >= MANY_FILES // 1000, one_partition
        assert one_partition.get("GET_RANGE", 0) + one_partition.get("GET", 0) <= 2 * len(ids), one_partition

        # Within the listing TTL the prefix is not listed again; other
        # partitions are read from the cached listing.
        s3.proxy.reset_counts()
        got = query(address, "admin", "SELECT count(*) FROM many WHERE p IN (5, 7)").column(0)[0].as_py()
        assert got == 2 * MANY_FILES // PARTITIONS
        assert s3.proxy.snapshot().get("LIST", 0) == 0, s3.proxy.snapshot()


def test_created_tables_carry_the_location_encryption(s3, s3_lake, tmp_path):
    """CREATE TABLE AS into the SSE-KMS bucket, on a server with a policy
    store: the new table's objects (a Parquet object; a Delta table's data
    file and version 0) are written through that location, with its KMS key,
    and the table reads back what the query selected."""
    inspector = s3.client("s3")
    for prefix in ["demo/tpc/made_parquet/", "demo/tpc/made_delta/"]:
        for listed in inspector.list_objects_v2(Bucket="lake-b", Prefix=prefix).get("Contents", []):
            inspector.delete_object(Bucket="lake-b", Key=listed["Key"])
    catalog = two_bucket_catalog(tmp_path / "catalog", s3)
    (catalog / "creates.toml").write_text(
        '[[grant]]\nname = "admin_creates"\nrole = "lake_admin"\non = "tpc.*"\nprivileges = ["create_table"]\n')
    store = f"sqlite://{tmp_path / 'policy.db'}"
    selected = "SELECT i_item_sk, i_category FROM tpc.dl_tpc_item WHERE i_item_sk <= 10"
    with start_server(tmp_path / "state", "--store", store, catalog=catalog, env=server_env(s3)) as address:
        expected = sorted(query(address, "admin", selected).to_pylist(), key=lambda r: r["i_item_sk"])
        assert expected
        for name, format in [("made_parquet", "PARQUET"), ("made_delta", "DELTA")]:
            created = f"CREATE TABLE tpc.{name} STORED AS {format} LOCATION 's3://lake-b/demo/tpc/{name}/' AS {selected}"
            assert insert(address, created) == len(expected)
            read = query(address, "admin", f"SELECT i_item_sk, i_category FROM tpc.{name} ORDER BY i_item_sk")
            assert read.to_pylist() == expected, name
            keys = [o["Key"] for o in
                    inspector.list_objects_v2(Bucket="lake-b", Prefix=f"demo/tpc/{name}/").get("Contents", [])]
            assert keys, name
            if format == "DELTA":
                assert f"demo/tpc/{name}/_delta_log/00000000000000000000.json" in keys, keys
            for key in keys:
                head = inspector.head_object(Bucket="lake-b", Key=key)
                assert head["ServerSideEncryption"] == "aws:kms", (key, head)
                assert s3.kms_key in head["SSEKMSKeyId"], (key, head)
