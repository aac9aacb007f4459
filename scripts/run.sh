#!/usr/bin/env bash
# One command for the whole system on embedded defaults (SQLite everywhere, local WhatsApp sandbox):
# sets up what is missing, trains the model if the training data changed, then starts Rasa (WhatsApp +
# REST channels, HTTP API with a token), the action server, the inbox and the sandbox under honcho.
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash scripts/setup.sh
load_environment
bash scripts/train.sh
say "Starting the services (honcho, Procfile)"
exec "$VENV/bin/honcho" start -f Procfile
