#!/usr/bin/env bash
# Starts the production profile (deploy/Procfile.production) under honcho: the action server, Rasa (WhatsApp
# channel only, JWT on its HTTP API), the inbox and its event-stream consumer — all on 127.0.0.1 — and nginx
# in front (deploy/nginx/, rendered from the environment). README, "Operating in production".
#
# Every setting comes from the environment; nothing secret is in the repository or generated here. Before
# anything starts it checks the environment and refuses, listing every problem at once, when a required
# variable is missing, a secret is too short or is one of the local demo's (var/local.env), or demo
# credentials are set. Then it migrates the inbox database and starts the processes.
#   --check   only check the environment and render the proxy configuration, start nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# Not secret: defaults an operator may override.
export RASA_PORT="${RASA_PORT:-5005}" ACTION_SERVER_PORT="${ACTION_SERVER_PORT:-5055}" INBOX_PORT="${INBOX_PORT:-8080}"
export ACTION_SERVER_URL="${ACTION_SERVER_URL:-http://127.0.0.1:${ACTION_SERVER_PORT}/webhook}"
export RASA_URL="${RASA_URL:-http://127.0.0.1:${RASA_PORT}}" INBOX_URL="${INBOX_URL:-http://127.0.0.1:${INBOX_PORT}}"
export RASA_MODEL="${RASA_MODEL:-models/kesar-lane.tar.gz}" REDIS_LOCK_DB="${REDIS_LOCK_DB:-0}"
export WHATSAPP_API_BASE_URL="${WHATSAPP_API_BASE_URL:-https://graph.facebook.com/v21.0}"
export PROXY_TLS="${PROXY_TLS:-on}" PROXY_LISTEN="${PROXY_LISTEN:-0.0.0.0}" PROXY_SERVER_NAME="${PROXY_SERVER_NAME:-_}"
if [ "$PROXY_TLS" = "on" ]; then export PROXY_PORT="${PROXY_PORT:-443}"; else export PROXY_PORT="${PROXY_PORT:-8000}"; fi
export PROXY_RUN_DIR="${PROXY_RUN_DIR:-$ROOT/var/proxy}" PROXY_ACCESS_LOG="${PROXY_ACCESS_LOG:-/dev/stdout}"
export PROXY_NGINX="${PROXY_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
export KB_PATH="${KB_PATH:-$ROOT/data/knowledge_base.yml}"
# The inbox's consumer runs as its own process (Procfile `consumer:`), not inside the web server.
export INBOX_ENV=production INBOX_CONSUMER=off
# Rasa's telemetry would send usage data and crash reports (tracebacks can hold customer text) to Rasa's servers.
export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=3 SQLALCHEMY_SILENCE_UBER_WARNING=1 PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"

# Random secrets of our own (make each with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))').
OWN_SECRETS=(RASA_JWT_SECRET ACTION_SERVER_TOKEN INBOX_SESSION_SECRET INBOX_BOT_TOKEN)
REQUIRED=(
  "${OWN_SECRETS[@]}"
  WHATSAPP_VERIFY_TOKEN WHATSAPP_APP_SECRET WHATSAPP_ACCESS_TOKEN WHATSAPP_PHONE_NUMBER_ID
  RASA_TRACKER_DB_HOST RASA_TRACKER_DB_PORT RASA_TRACKER_DB_NAME RASA_TRACKER_DB_USER RASA_TRACKER_DB_PASSWORD
  RASA_EVENTS_DB_HOST RASA_EVENTS_DB_PORT RASA_EVENTS_DB_NAME RASA_EVENTS_DB_USER RASA_EVENTS_DB_PASSWORD
  RASA_EVENTS_DB_URL DATABASE_URL WHATSAPP_STORE_URL
  REDIS_HOST REDIS_PORT REDIS_PASSWORD
  INBOX_PUBLIC_URL
)
if [ "$PROXY_TLS" = "on" ]; then REQUIRED+=(PROXY_TLS_CERT PROXY_TLS_KEY); fi

problems=()
missing=()
for name in "${REQUIRED[@]}"; do [ -n "${!name:-}" ] || missing+=("$name"); done
[ ${#missing[@]} -eq 0 ] || problems+=("missing environment variables: ${missing[*]}")
for name in "${OWN_SECRETS[@]}"; do
  value="${!name:-}"
  if [ -n "$value" ] && [ ${#value} -lt 32 ]; then problems+=("$name is shorter than 32 characters"); fi
done
# Demo credentials and the local demo's generated secrets are refused.
[ -z "${INBOX_DEMO_PASSWORD:-}" ] || problems+=("INBOX_DEMO_PASSWORD is set: demo agents and their shared password are for the local demo only; unset it")
case "${WHATSAPP_ACCESS_TOKEN:-}" in sandbox-*) problems+=("WHATSAPP_ACCESS_TOKEN is the local sandbox's; use the token of your Meta app") ;; esac
if [ -f "$ROOT/var/local.env" ]; then
  while IFS='=' read -r key value; do
    case "$key" in ''|'#'*) continue ;; esac
    for name in "${REQUIRED[@]}"; do
      if [ -n "$value" ] && [ "${!name:-}" = "$value" ]; then problems+=("$name is the local demo's generated value (var/local.env); make a new secret"); fi
    done
  done < "$ROOT/var/local.env"
fi
for url in DATABASE_URL RASA_EVENTS_DB_URL WHATSAPP_STORE_URL; do
  case "${!url:-postgresql}" in postgresql*) ;; *) problems+=("$url must be a PostgreSQL URL (postgresql://… or postgresql+psycopg://…)") ;; esac
done
case "${INBOX_PUBLIC_URL:-https://}" in https://*) ;; *) problems+=("INBOX_PUBLIC_URL must start with https:// (the inbox's cookies are Secure in production)") ;; esac
[ -f "$RASA_MODEL" ] || problems+=("no trained model at $RASA_MODEL (RASA_MODEL; bash scripts/train.sh makes models/kesar-lane.tar.gz)")
[ -x "$PROXY_NGINX" ] || problems+=("nginx not found (apt-get install nginx-light, or set PROXY_NGINX)")
[ -x "$VENV/bin/honcho" ] && [ -x "$INBOX_VENV/bin/python" ] || problems+=("environments missing: run bash scripts/setup.sh first")
if [ ${#problems[@]} -gt 0 ]; then
  printf '\033[1;31mxx\033[0m Refusing to start the production profile:\n' >&2
  printf '   - %s\n' "${problems[@]}" >&2
  exit 2
fi
case "$WHATSAPP_API_BASE_URL" in https://*) ;; *) warn "WHATSAPP_API_BASE_URL is not HTTPS ($WHATSAPP_API_BASE_URL): only for tests against the sandbox" ;; esac
[ "$PROXY_TLS" = "on" ] || warn "PROXY_TLS=off: plain HTTP on $PROXY_LISTEN:$PROXY_PORT; put a TLS-terminating load balancer in front"

say "Rendering the proxy configuration into $PROXY_RUN_DIR"
"$VENV/bin/python" deploy/render_proxy.py >/dev/null
"$PROXY_NGINX" -t -q -p "$PROXY_RUN_DIR" -c "$PROXY_RUN_DIR/nginx.conf" -e stderr
if [ "${1:-}" = "--check" ]; then say "Environment and proxy configuration are fine (--check: nothing started)"; exit 0; fi

say "Migrating the inbox database"
"$INBOX_VENV/bin/python" -m inbox migrate upgrade
say "Starting the production profile (honcho, deploy/Procfile.production)"
exec "$VENV/bin/honcho" start -f deploy/Procfile.production -d "$ROOT"
