#!/usr/bin/env bash
# RabbitMQ (Debian's rabbitmq-server) in the foreground as a process of its own: its own node name, data
# directory, ports and user, so it runs beside anything else on the machine (the cluster profile's Procfile
# and tests/cluster start it this way). Listens on 127.0.0.1 only.
#   RABBITMQ_DIR (data, logs, config), RABBITMQ_PORT (AMQP), RABBITMQ_USER, RABBITMQ_PASSWORD: required.
#   RABBITMQ_DIST_PORT, RABBITMQ_EPMD_PORT: Erlang's distribution and port-mapper ports (default AMQP+20000
#   and AMQP+20001, or -20000 and -19999 near the top of the range), so a second node on the machine does not collide.
set -euo pipefail
: "${RABBITMQ_DIR:?}" "${RABBITMQ_PORT:?}" "${RABBITMQ_USER:?}" "${RABBITMQ_PASSWORD:?}"
BIN=/usr/lib/rabbitmq/bin
[ -x "$BIN/rabbitmq-server" ] || { echo "rabbitmq-server is missing: apt-get install -y rabbitmq-server" >&2; exit 2; }
# AMQP port + 20000 (+1), or - 20000 (+1) when that would pass 65535.
if [ $(( RABBITMQ_PORT + 20001 )) -lt 65536 ]; then base=$(( RABBITMQ_PORT + 20000 )); else base=$(( RABBITMQ_PORT - 20000 )); fi
export RABBITMQ_DIST_PORT="${RABBITMQ_DIST_PORT:-$base}"
export ERL_EPMD_PORT="${RABBITMQ_EPMD_PORT:-$(( base + 1 ))}" ERL_EPMD_ADDRESS=127.0.0.1
mkdir -p "$RABBITMQ_DIR"/{mnesia,log,home}
chmod 700 "$RABBITMQ_DIR"
# The password goes into a 0600 file, never onto a command line.
umask 077
cat > "$RABBITMQ_DIR/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$RABBITMQ_PORT
default_user = $RABBITMQ_USER
default_pass = $RABBITMQ_PASSWORD
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
log.console = true
log.console.level = warning
# The standby inbox consumer is refused the queue every second by design (exclusive consumer); not an error.
log.channel.level = critical
log.file = false
CONF
: > "$RABBITMQ_DIR/enabled_plugins.erl"; echo '[].' > "$RABBITMQ_DIR/enabled_plugins.erl"
export HOME="$RABBITMQ_DIR/home"  # the Erlang cookie lives here
export RABBITMQ_NODENAME="${RABBITMQ_NODENAME:-kesar$RABBITMQ_PORT@localhost}"
export RABBITMQ_CONFIG_FILE="$RABBITMQ_DIR/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$RABBITMQ_DIR/enabled_plugins.erl"
export RABBITMQ_MNESIA_BASE="$RABBITMQ_DIR/mnesia" RABBITMQ_LOG_BASE="$RABBITMQ_DIR/log"
export RABBITMQ_PID_FILE="$RABBITMQ_DIR/rabbitmq.pid" RABBITMQ_SERVER_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_LOGS=- RABBITMQ_ADVANCED_CONFIG_FILE="$RABBITMQ_DIR/advanced.config"
# Not exec: Erlang starts its port mapper (epmd) as a daemon of its own, which is stopped here afterwards.
stop() { kill -TERM "$server" 2>/dev/null || true; wait "$server" || true; epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true; }
"$BIN/rabbitmq-server" &
server=$!
trap 'stop; exit 0' TERM INT
wait "$server" || status=$?
epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
exit "${status:-0}"
