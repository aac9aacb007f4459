#!/usr/bin/env bash
# Creates or updates the inbox's own virtualenv (inbox/.venv, Python 3.11+) from
# inbox/requirements.txt. Idempotent: a second run with unchanged requirements does nothing.
#
#   inbox/scripts/setup_env.sh                 # the environment
#   inbox/scripts/setup_env.sh --with-browser  # also Debian's chromium for the browser tests (apt, root)
#
# INBOX_PYTHON picks the interpreter (default: python3.11, else python3 if it is 3.11 or newer).
set -euo pipefail

inbox_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$inbox_dir/.venv"
requirements="$inbox_dir/requirements.txt"

pick_python() {
  for candidate in "${INBOX_PYTHON:-}" python3.11 python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "setup_env.sh: needs Python 3.11 or newer (set INBOX_PYTHON)" >&2
  exit 1
}

if [[ ! -x "$venv/bin/python" ]]; then
  python="$(pick_python)"
  echo "Creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi

stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/python" -m pip check
  echo "$wanted" > "$stamp"
  echo "Installed inbox/requirements.txt into $venv"
else
  echo "$venv is up to date"
fi
# The project's one WhatsApp Cloud API client (../whatsapp_cloud, shared with the connector), editable.
client="$(dirname "$inbox_dir")/whatsapp_cloud"
client_wanted="$(sha256sum "$client/pyproject.toml" | cut -d' ' -f1)"
if [[ "$(cat "$venv/.whatsapp_cloud.sha256" 2>/dev/null || true)" != "$client_wanted" ]]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$client"
  "$venv/bin/python" -m pip check
  echo "$client_wanted" > "$venv/.whatsapp_cloud.sha256"
  echo "Installed whatsapp_cloud into $venv"
fi

if [[ "${1:-}" == "--with-browser" ]] && ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium
fi
