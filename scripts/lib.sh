# Shared shell helpers for scripts/*.sh (sourced, not run).
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
INBOX_VENV="$ROOT/inbox/.venv"

say() { printf '\033[1;36m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m!!\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }

# Rasa 3.6 runs on Python 3.10 only. Honour $PYTHON310, then python3.10 on PATH, then pyenv.
find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" python3.10; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10\.[0-9]+$' | sort -V | tail -n 1)"
    if [ -n "$version" ]; then echo "$(pyenv root)/versions/$version/bin/python3.10"; return 0; fi
  fi
  die "Python 3.10 not found (Rasa 3.6 needs it). Install it, or set PYTHON310=/path/to/python3.10."
}

# Environment for every process: local-demo defaults for anything the operator did not set.
# Secrets for the local demo are generated once into var/local.env (gitignored), never stored in the repo.
load_environment() {
  mkdir -p "$ROOT/var"
  local env_file="$ROOT/var/local.env"
  rnd() { "${VENV}/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))' 2>/dev/null || python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
  if [ ! -f "$env_file" ]; then
    {
      echo "# Generated for the local demo by scripts/lib.sh. Delete to regenerate."
      echo "RASA_JWT_SECRET=$(rnd)"
      echo "INBOX_BOT_TOKEN=$(rnd)"
      echo "INBOX_SESSION_SECRET=$(rnd)"
      echo "INBOX_DEMO_PASSWORD=demo-$(rnd | cut -c1-8)"
      echo "WHATSAPP_VERIFY_TOKEN=$(rnd)"
      echo "WHATSAPP_APP_SECRET=$(rnd)"
      echo "WHATSAPP_ACCESS_TOKEN=sandbox-$(rnd)"
    } > "$env_file"
    chmod 600 "$env_file"
  fi
  # A var/local.env written before RASA_JWT_SECRET existed (Rasa's API used a query-string token) gets one.
  grep -q '^RASA_JWT_SECRET=' "$env_file" || echo "RASA_JWT_SECRET=$(rnd)" >> "$env_file"
  # The inbox's "Test answer" and knowledge-base status call the action server with this (issue 17).
  grep -q '^ACTION_SERVER_TOKEN=' "$env_file" || echo "ACTION_SERVER_TOKEN=$(rnd)" >> "$env_file"
  # Values already in the environment win over the generated ones.
  local line key
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    key="${line%%=*}"
    if [ -z "${!key:-}" ]; then export "$line"; fi
  done < "$env_file"

  export RASA_PORT="${RASA_PORT:-5005}"
  export ACTION_SERVER_PORT="${ACTION_SERVER_PORT:-5055}"
  export INBOX_PORT="${INBOX_PORT:-8080}"
  export SANDBOX_PORT="${SANDBOX_PORT:-8090}"
  export RASA_URL="${RASA_URL:-http://127.0.0.1:${RASA_PORT}}"
  export INBOX_URL="${INBOX_URL-http://127.0.0.1:${INBOX_PORT}}"
  export RASA_ENDPOINTS="${RASA_ENDPOINTS:-endpoints.yml}"
  export RASA_EVENTS_DB_URL="${RASA_EVENTS_DB_URL:-sqlite:///${ROOT}/var/rasa_events.db}"
  export WHATSAPP_PHONE_NUMBER_ID="${WHATSAPP_PHONE_NUMBER_ID:-100000000000001}"
  export WHATSAPP_API_BASE_URL="${WHATSAPP_API_BASE_URL:-http://127.0.0.1:${SANDBOX_PORT}/v21.0}"
  export SANDBOX_WEBHOOK_URL="${SANDBOX_WEBHOOK_URL:-http://127.0.0.1:${RASA_PORT}/webhooks/whatsapp/webhook}"
  export WHATSAPP_STORE_URL="${WHATSAPP_STORE_URL:-sqlite:///${ROOT}/var/whatsapp.db}"
  export KB_PATH="${KB_PATH:-${ROOT}/data/knowledge_base.yml}"
  export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
  export SQLALCHEMY_SILENCE_UBER_WARNING=1
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
  export PYTHONUNBUFFERED=1
  # Rasa and the action server each run torch/TensorFlow; on a small machine several OpenMP threads per
  # process fight over the cores. One thread each cut CPU per message 3-4x (bench/README_whatsapp.md).
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
}
