#!/usr/bin/env bash
# One command for every test suite (CI runs exactly this through .ci/run):
# sets up the environments, validates the training data, trains if needed, runs the Rasa story tests,
# the WhatsApp Cloud API client's tests (both environments), the
# inbox suites (SQLite, PostgreSQL, browser), pytest for
# actions/components/connector/integration, the end-to-end and fault tests with every service
# running, the production profile behind its proxy, and the cluster profile under faults. Every stage runs; the summary says which failed.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FAILED=()
PASSED=()
stage() {
  local name="$1"; shift
  say "[$name] $*"
  local started=$SECONDS
  if "$@"; then
    PASSED+=("$name"); say "[$name] passed in $((SECONDS - started)) s"
  else
    FAILED+=("$name"); warn "[$name] FAILED after $((SECONDS - started)) s"
  fi
}
# A stage that needs nothing from the stages around it can run beside them: it starts now, its output
# goes to a log, and `finish_stage` waits for it and prints the log, so the summary reads as before.
declare -A BACKGROUND_PID BACKGROUND_LOG BACKGROUND_START
start_stage() {
  local name="$1"; shift
  say "[$name] started beside the next stages: $*"
  BACKGROUND_LOG[$name]="$(mktemp "/tmp/test-stage-$name.XXXXXX")"
  BACKGROUND_START[$name]=$SECONDS
  "$@" > "${BACKGROUND_LOG[$name]}" 2>&1 &
  BACKGROUND_PID[$name]=$!
}
finish_stage() {
  local name="$1"
  say "[$name] waiting for it to finish"
  if wait "${BACKGROUND_PID[$name]}"; then
    cat "${BACKGROUND_LOG[$name]}"
    PASSED+=("$name"); say "[$name] passed in $((SECONDS - BACKGROUND_START[$name])) s (beside other stages)"
  else
    cat "${BACKGROUND_LOG[$name]}"
    FAILED+=("$name"); warn "[$name] FAILED after $((SECONDS - BACKGROUND_START[$name])) s (beside other stages)"
  fi
  rm -f "${BACKGROUND_LOG[$name]}"
}

bash scripts/setup.sh || die "set-up failed"
load_environment

# One throwaway PostgreSQL cluster for the whole run: the inbox suite runs on it, and the WhatsApp
# store tests run on it as well as on SQLite (a missing server is then a failure, not a skip).
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  pg_data="$(mktemp -d /tmp/test-postgres.XXXXXX)"
  trap 'bash inbox/scripts/start_test_postgres.sh --stop "$pg_data" 2>/dev/null' EXIT
  TEST_POSTGRES_URL="$(PG_DATA_DIR="$pg_data" bash inbox/scripts/start_test_postgres.sh)" \
    || die "could not start PostgreSQL for the tests"
  export TEST_POSTGRES_URL
fi
export WHATSAPP_REQUIRE_POSTGRES=1
RASA="$VENV/bin/rasa"
mkdir -p results

# Debian's chromium for the browser tests (inbox, end-to-end KB page, sandbox page), before any suite needs it.
bash inbox/scripts/setup_env.sh --with-browser || die "could not install chromium for the browser tests"

stage validate "$RASA" data validate --fail-on-warnings
# The inbox suites (SQLite, PostgreSQL, browser) need no model: they start now and run beside training, the
# story tests, the client's tests and the end-to-end tests. Training spends most of its time on one
# core (the intent classifier's fit was 38 of 72 s of a local training; BLAS has one thread: OMP_NUM_THREADS=1)
# and the inbox suite keeps ~60 % of a core busy; one after the other they took 189 + 86 + 448 s in CI.
start_stage inbox bash inbox/scripts/test.sh
stage train bash scripts/train.sh
# Suites side by side: one that mostly waits on its processes (end-to-end: service restarts; production:
# 20 s outages) beside one that keeps the CPU busy (inbox, stories, pytest). Ports are claimed across processes
# (tests/free_ports.py), each profile has its own databases and data copies, so they share nothing.
# End-to-end (needs the trained model, nothing else): Rasa, action server, inbox and sandbox as real
# processes, driven by signed webhooks.
start_stage e2e "$VENV/bin/python" -m pytest tests/e2e -q -p no:cacheprovider
# Through the Rasa start-up step, so the stories run the model with the server's speed-ups (connectors/rasa_start.py).
stage stories "$VENV/bin/python" -m connectors.rasa_start test core --stories tests/ --model models/kesar-lane.tar.gz \
  --fail-on-prediction-errors --out results/stories
# The one WhatsApp Cloud API client (whatsapp_cloud/tests: sync and async against a fake Graph API),
# in both environments that use it: the connector's and the inbox's.
stage whatsapp-cloud "$VENV/bin/python" -m pytest whatsapp_cloud/tests -q -p no:cacheprovider
stage whatsapp-cloud-inbox inbox/.venv/bin/python -m pytest whatsapp_cloud/tests -q -p no:cacheprovider
finish_stage e2e
finish_stage inbox
# The production profile (scripts/production.sh) behind nginx, PostgreSQL and Redis, attacked from outside.
start_stage production "$VENV/bin/python" -m pytest tests/production -q -p no:cacheprovider
# Two pytest workers (pytest-xdist), one per core: the suite alone kept one core busy for ~13 of CI's ~29 minutes
# while the production suite beside it mostly waits on its outages. `loadfile` keeps each file on one worker, so a
# module's fixtures (a loaded model, a started server) are built once; ports are claimed across processes, tests
# write to their own temporary directories, and the shared caches under build/ are written atomically (temporary
# file, then rename).
stage pytest "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider --ignore=tests/e2e --ignore=tests/production \
  --ignore=tests/cluster -n "${PYTEST_WORKERS:-2}" --dist loadfile
finish_stage production
# Alone at the end: the chaos test's faults and counts are easiest to read on a machine doing nothing else.
# The cluster profile (deploy/cluster/): two Rasa instances behind nginx, RabbitMQ, chaos while 16 customers chat.
stage cluster "$VENV/bin/python" -m pytest tests/cluster -q -p no:cacheprovider

echo
say "Stages passed: ${PASSED[*]:-none}"
if [ ${#FAILED[@]} -gt 0 ]; then warn "Stages failed: ${FAILED[*]}"; fi
echo "stages: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ ${#FAILED[@]} -eq 0 ]
