#!/usr/bin/env bash
# The inbox's whole test suite, as CI runs it (scripts/test.sh calls this):
#   - sets up inbox/.venv and Debian's chromium (idempotent),
#   - starts a throwaway PostgreSQL cluster unless TEST_POSTGRES_URL is already set
#     (INBOX_TEST_POSTGRES=0 skips PostgreSQL),
#   - runs every test on SQLite and PostgreSQL, and the browser tests against the WhatsApp sandbox.
# Extra arguments go to pytest, e.g.  inbox/scripts/test.sh -k handoff
set -euo pipefail
inbox_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(dirname "$inbox_dir")"

bash "$inbox_dir/scripts/setup_env.sh" --with-browser

if [[ -z "${TEST_POSTGRES_URL:-}" && "${INBOX_TEST_POSTGRES:-1}" != "0" ]]; then
  pg_data="$(mktemp -d /tmp/inbox-test-postgres.XXXXXX)"
  trap 'bash "$inbox_dir/scripts/start_test_postgres.sh" --stop "$pg_data" 2>/dev/null' EXIT
  TEST_POSTGRES_URL="$(PG_DATA_DIR="$pg_data" bash "$inbox_dir/scripts/start_test_postgres.sh")"
  export TEST_POSTGRES_URL
fi

cd "$root"
# In CI a missing browser or sandbox is a failure, not a skip.
export INBOX_REQUIRE_BROWSER="${INBOX_REQUIRE_BROWSER:-1}"
"$inbox_dir/.venv/bin/python" -m pytest "$inbox_dir/tests" -q "$@"  # not exec: the trap stops PostgreSQL
