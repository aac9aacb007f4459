#!/usr/bin/env bash
# One-time preparation before the cluster's processes start together (scripts/cluster.sh, tests/cluster):
# Rasa's tracker tables and the inbox's schema are created once here, so two Rasa instances or two inbox
# processes starting at the same moment never race to create the same table. With INBOX_DEMO_PASSWORD set
# (the demo), the demo agents are created here too, for the same reason.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
.venv/bin/python - <<'PY'
import asyncio
from rasa.core.tracker_store import TrackerStore
from rasa.utils.endpoints import read_endpoint_config
config = read_endpoint_config("deploy/cluster/endpoints.cluster.yml", "tracker_store")
TrackerStore.create(config)  # the SQL tracker store creates its tables in its constructor
PY
inbox/.venv/bin/python -m inbox migrate upgrade
inbox/.venv/bin/python - <<'PY'
from inbox.context import Inbox
from inbox.services import bootstrap
from inbox.settings import Settings
inbox = Inbox(Settings())
bootstrap.prepare(inbox)
if inbox.settings.inbox_env == "development":
    bootstrap.seed_demo_agents(inbox)
PY
