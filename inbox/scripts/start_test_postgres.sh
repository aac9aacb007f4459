#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the inbox tests and prints its URL on stdout:
#
#   export TEST_POSTGRES_URL=$(inbox/scripts/start_test_postgres.sh)
#
# Installs PostgreSQL with apt when it is missing (needs root). The cluster lives in a temporary
# directory owned by the `postgres` user (or in $PG_DATA_DIR when set), listens on 127.0.0.1 on a
# free port, trusts local connections and is thrown away with:
#   inbox/scripts/start_test_postgres.sh --stop <data dir>
# (the data directory is printed on stderr).
set -euo pipefail

log() { echo "$*" >&2; }

if [[ "${1:-}" == "--stop" ]]; then
  data_dir="${2:?usage: $0 --stop <data dir>}"
  bin_dir="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")"
  su postgres -c "$bin_dir/pg_ctl -D '$data_dir' -m fast stop" >&2 || true
  rm -rf "$data_dir"
  exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  log "PostgreSQL is not installed; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin_dir="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
data_dir="${PG_DATA_DIR:-$(mktemp -d /tmp/inbox-test-postgres.XXXXXX)}"
mkdir -p "$data_dir"
chown postgres:postgres "$data_dir"
chmod 700 "$data_dir"

su postgres -c "$bin_dir/initdb -D '$data_dir' -A trust -U postgres --no-sync -E UTF8" >/dev/null
su postgres -c "$bin_dir/pg_ctl -D '$data_dir' -l '$data_dir/server.log' -w \
  -o \"-p $port -k '$data_dir' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start" >&2
su postgres -c "$bin_dir/createdb -h 127.0.0.1 -p $port -U postgres inbox_test"

log "PostgreSQL $("$bin_dir/postgres" --version | awk '{print $3}') running on port $port; data directory $data_dir"
log "stop it with: $0 --stop $data_dir"
echo "postgresql+psycopg://postgres@127.0.0.1:$port/inbox_test"
