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
bash scripts/train.sh --quiet  # one line when the model is up to date; `bash scripts/train.sh` shows it all
# Local demo: the support team is "open" around the clock so a hand-off is assigned to a named agent
# whatever the hour. DEMO_REAL_HOURS=1 keeps the business hours of inbox/config/assignment.yml
# (outside them the customer is told when the team is back, and the conversation waits in Unassigned).
if [ "${DEMO_REAL_HOURS:-0}" != "1" ]; then export INBOX_BUSINESS_HOURS="${INBOX_BUSINESS_HOURS:-mon-sun 00:00-24:00}"; fi
say "Starting the services (honcho, Procfile)"
exec "$VENV/bin/honcho" start -f Procfile
