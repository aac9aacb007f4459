#!/usr/bin/env bash
# The cluster profile on one machine (deploy/cluster/): a load balancer (nginx) in front of two Rasa instances
# (WhatsApp connector each), two action servers, two inbox web processes and two event-stream consumers, with
# PostgreSQL (tracker store, connector store, inbox), Redis (lock store) and RabbitMQ (event stream) — plus the
# WhatsApp sandbox playing Meta, as in the demo. Prints the same URLs as scripts/run.sh; Ctrl-C stops everything.
#
# A demonstration of the topology, not a production start: the secrets are the local demo's (var/local.env), the
# inbox has the demo agents, and PostgreSQL and RabbitMQ are started fresh in var/cluster/ and thrown away on
# exit. On several machines run the same processes with deploy/cluster/endpoints.cluster.yml and real secrets
# (README, "Past one machine").
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_environment

export CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/var/cluster}"
export LB_PORT="${LB_PORT:-8080}" SANDBOX_PORT="${SANDBOX_PORT:-8090}"
export RASA_PORT_1="${RASA_PORT_1:-5005}" RASA_PORT_2="${RASA_PORT_2:-5006}"
export ACTION_SERVER_PORT_1="${ACTION_SERVER_PORT_1:-5055}" ACTION_SERVER_PORT_2="${ACTION_SERVER_PORT_2:-5056}"
export INBOX_PORT_1="${INBOX_PORT_1:-8081}" INBOX_PORT_2="${INBOX_PORT_2:-8082}"
export LB_RASA_PORT="${LB_RASA_PORT:-5010}" LB_INBOX_PORT="${LB_INBOX_PORT:-8088}" LB_ACTIONS_PORT="${LB_ACTIONS_PORT:-5050}"
export REDIS_HOST=127.0.0.1 REDIS_PORT="${REDIS_PORT:-6380}" REDIS_LOCK_DB=0
export RABBITMQ_HOST=127.0.0.1 RABBITMQ_PORT="${RABBITMQ_PORT:-5673}" RABBITMQ_USER=kesar
export RASA_MODEL="${RASA_MODEL:-models/kesar-lane.tar.gz}"

for tool in nginx redis-server; do command -v "$tool" >/dev/null || die "$tool is missing: bash scripts/setup.sh"; done
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || die "rabbitmq-server is missing: bash scripts/setup.sh"
[ -f "$RASA_MODEL" ] || die "no trained model at $RASA_MODEL: bash scripts/train.sh"

rnd() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
rm -rf "$CLUSTER_DIR"; mkdir -p "$CLUSTER_DIR"; chmod 700 "$CLUSTER_DIR"
export RABBITMQ_DIR="$CLUSTER_DIR/rabbitmq" RABBITMQ_PASSWORD="$(rnd)" REDIS_PASSWORD="$(rnd)"
export ACTION_SERVER_TOKEN="${ACTION_SERVER_TOKEN:-$(rnd)}"
(umask 077; printf 'port %s\nbind 127.0.0.1\nrequirepass %s\nsave ""\nappendonly no\ndir %s\n' \
  "$REDIS_PORT" "$REDIS_PASSWORD" "$CLUSTER_DIR" > "$CLUSTER_DIR/redis.conf")

say "Starting PostgreSQL (thrown away on exit)"
pg_dir="$(mktemp -d /tmp/kesar-cluster-postgres.XXXXXX)"
trap 'bash inbox/scripts/start_test_postgres.sh --stop "$pg_dir" >/dev/null 2>&1' EXIT
pg_url="$(PG_DATA_DIR="$pg_dir" bash inbox/scripts/start_test_postgres.sh 2>/dev/null)"
pg_port="${pg_url#*127.0.0.1:}"; pg_port="${pg_port%%/*}"
"$INBOX_VENV/bin/python" - "$pg_port" <<'PY'
import sys, psycopg
with psycopg.connect(f"postgresql://postgres@127.0.0.1:{sys.argv[1]}/postgres", autocommit=True) as connection:
    for name in ("cluster_tracker", "cluster_inbox", "cluster_whatsapp"):
        connection.execute(f"CREATE DATABASE {name}")
PY
export RASA_TRACKER_DB_HOST=127.0.0.1 RASA_TRACKER_DB_PORT="$pg_port" RASA_TRACKER_DB_NAME=cluster_tracker
export RASA_TRACKER_DB_USER=postgres RASA_TRACKER_DB_PASSWORD="$(rnd)"  # trust authentication: any password
export DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/cluster_inbox"
export WHATSAPP_STORE_URL="postgresql://postgres@127.0.0.1:$pg_port/cluster_whatsapp"

# Who reaches whom: always through the load balancer's internal listeners, so any instance will do.
export RASA_URL="http://127.0.0.1:$LB_RASA_PORT" INBOX_URL="http://127.0.0.1:$LB_INBOX_PORT"
export ACTION_SERVER_URL="http://127.0.0.1:$LB_ACTIONS_PORT/webhook"
export INBOX_ENV=development INBOX_CONSUMER=off INBOX_EVENT_BROKER=rabbitmq INBOX_VAR_DIR="$CLUSTER_DIR"
export RABBITMQ_URL="amqp://$RABBITMQ_USER:$RABBITMQ_PASSWORD@127.0.0.1:$RABBITMQ_PORT/%2F"
export INBOX_PUBLIC_URL="http://127.0.0.1:$LB_PORT"
export SANDBOX_WEBHOOK_URL="http://127.0.0.1:$LB_PORT/webhooks/whatsapp/webhook"
export INBOX_BUSINESS_HOURS="${INBOX_BUSINESS_HOURS:-mon-sun 00:00-24:00}"
export RASA_TELEMETRY_ENABLED=false
export PROXY_TLS=off PROXY_LISTEN=127.0.0.1 PROXY_PORT="$LB_PORT" PROXY_SERVER_NAME=_ PROXY_RUN_DIR="$CLUSTER_DIR/lb"
export PROXY_ACCESS_LOG="$CLUSTER_DIR/lb-access.log" PROXY_NGINX="$(command -v nginx)"
export RASA_PORTS="$RASA_PORT_1 $RASA_PORT_2" INBOX_PORTS="$INBOX_PORT_1 $INBOX_PORT_2"
export ACTION_SERVER_PORTS="$ACTION_SERVER_PORT_1 $ACTION_SERVER_PORT_2"

say "Rendering the load balancer and preparing the databases"
"$VENV/bin/python" deploy/cluster/render_lb.py >/dev/null
"$PROXY_NGINX" -t -q -p "$PROXY_RUN_DIR" -c "$PROXY_RUN_DIR/nginx.conf" -e stderr
bash deploy/cluster/prepare.sh

# The cluster's processes, plus the sandbox and the banner of the demo (RASA_PORT etc. name what it prints).
{ cat deploy/cluster/Procfile.cluster
  echo "sandbox: .venv/bin/python -m whatsapp_sandbox"
  echo "ready: RASA_PORT=\$RASA_PORT_1 ACTION_SERVER_PORT=\$ACTION_SERVER_PORT_1 INBOX_PORT=\$LB_PORT .venv/bin/python scripts/announce.py"
} > "$CLUSTER_DIR/Procfile"
say "Starting the cluster (honcho, deploy/cluster/Procfile.cluster)"
"$VENV/bin/honcho" start -f "$CLUSTER_DIR/Procfile" -d "$ROOT"
