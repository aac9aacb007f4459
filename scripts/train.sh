#!/usr/bin/env bash
# Trains the model only when config, domain or training data changed (Rasa compares fingerprints with
# the newest model in models/ and says "Nothing changed" otherwise).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_environment
# Values config.yml states twice must agree (a clear error instead of a silently moved threshold).
"$VENV/bin/python" scripts/check_config.py
say "Training the model if the training data changed"
# Through the same start-up step as the server (connectors/rasa_start.py): the known third-party deprecation
# notices are filtered; Rasa's own warnings about the data still show.
"$VENV/bin/python" -m connectors.rasa_start train --fixed-model-name kesar-lane --out models "$@"
