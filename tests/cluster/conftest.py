"""Session fixture of the cluster suite: the whole cluster profile as separate processes (harness.ClusterSystem)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from inbox.tests.rabbitmq_server import INSTALLED
from tests.cluster.harness import ClusterSystem
from tests.production.clients import PostgresInboxDB


@pytest.fixture(scope="session")
def cluster():
    if not INSTALLED:
        pytest.fail("rabbitmq-server is not installed: bash scripts/setup.sh (apt-get install rabbitmq-server)")
    # Not pytest's temporary directory: its rotation would delete the logs of a failed run while others test.
    data_dir = Path(tempfile.mkdtemp(prefix="cluster-tests."))
    system = ClusterSystem.configure(data_dir)
    try:
        system.start_all()
        yield system
    finally:
        system.stop_all()
        print(f"\ncluster logs in {data_dir}")


@pytest.fixture(scope="session")
def inbox_db(cluster):
    return PostgresInboxDB(cluster.env["DATABASE_URL"])
