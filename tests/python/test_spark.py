"""Spark reads Lakegate through the PySpark 4 data source in
`clients/python` (pip-installed from the checkout for the test, where
Spark's Python workers import it): each task redeems one parallel endpoint
with pyarrow, so a DataFrame holds exactly the rows the role may read
(DuckDB reads the files for the ground truth), and the server's refusals
fail the Spark job with the server's message."""

import os
import subprocess
import sys

import duckdb
import pytest

from conftest import ROOT, raw

# PySpark 4.3 warns that it does not support pandas 3 fully; the data source
# hands it Arrow batches, not pandas frames.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local Spark session (two cores) with the data source registered."""
    target = tmp_path_factory.mktemp("lakegate_spark")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--target", str(target), str(ROOT / "clients" / "python")], check=True)
    # Spark's Python workers start from this environment.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))
    os.environ["PYSPARK_PYTHON"] = sys.executable
    sys.path.insert(0, str(target))
    from pyspark.sql import SparkSession

    from lakegate_spark import LakegateDataSource

    session = (SparkSession.builder.master("local[2]").appName("lakegate-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    session.dataSource.register(LakegateDataSource)
    yield session
    session.stop()


def read(spark, server, user, sql, role=None, password=None):
    reader = (spark.read.format("lakegate").option("uri", server).option("username", user)
              .option("password", password or f"{user}-pass"))
    if role:
        reader = reader.option("role", role)
    return reader.load(sql)


def test_each_role_reads_exactly_its_rows_in_parallel(spark, server, data_dir):
    sales = read(spark, server, "tina", "SELECT ws_order_number, ws_item_sk FROM dl_tpc_web_sales", role="sales")
    expected = duckdb.sql(
        f"SELECT ws_order_number, ws_item_sk FROM {raw(data_dir, 'dl_tpc_web_sales')} "
        f"WHERE ws_bill_addr_sk IN (SELECT ca_address_sk FROM {raw(data_dir, 'dl_tpc_customer_address')} "
        f"WHERE ca_state IN ('CA', 'OR', 'WA')) ORDER BY 1, 2").fetchall()
    assert expected
    assert sorted(tuple(row) for row in sales.collect()) == expected

    everything = read(spark, server, "admin", "SELECT ws_order_number, ws_item_sk, ws_net_paid FROM dl_tpc_web_sales")
    assert everything.rdd.getNumPartitions() > 1, "one Spark partition per endpoint"
    assert [field.name for field in everything.schema.fields] == ["ws_order_number", "ws_item_sk", "ws_net_paid"]
    total = duckdb.sql(f"SELECT count(*), sum(ws_item_sk), sum(ws_net_paid) FROM {raw(data_dir, 'dl_tpc_web_sales')}"
                       ).fetchone()
    summed = everything.selectExpr("count(*)", "sum(ws_item_sk)", "sum(ws_net_paid)").collect()[0]
    assert (summed[0], summed[1]) == total[:2]
    assert summed[2] == total[2]

    # Masks travel too: david's e-mail addresses arrive hashed.
    emails = read(spark, server, "david", "SELECT c_email_address FROM dl_tpc_customer "
                  "WHERE c_email_address IS NOT NULL").collect()
    assert emails and all(len(row[0]) == 64 for row in emails)


def test_refusals_fail_the_job_with_the_servers_message(spark, server):
    with pytest.raises(Exception, match="invalid credentials"):
        read(spark, server, "tina", "SELECT 1", password="wrong").count()
    with pytest.raises(Exception, match="may not assume role 'marketing'"):
        read(spark, server, "tina", "SELECT count(*) FROM dl_tpc_item", role="marketing").count()
    with pytest.raises(Exception, match="may not read it"):
        read(spark, server, "david", "SELECT * FROM dl_tpc_customer_address").count()
