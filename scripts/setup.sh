#!/usr/bin/env bash
# Sets up everything the project needs on this machine; safe to run again (it skips what is done).
#   .venv          Python 3.10: Rasa 3.6, rasa-sdk, spaCy, sentence-transformers, the WhatsApp connector
#                  and sandbox, honcho (process supervisor), test tools.
#   inbox/.venv    Python 3.11+: the inbox with modern pins (inbox/scripts/setup_env.sh).
#   build/spacy/   the project's own spaCy pipeline (scripts/build_spacy_pipeline.py).
#   build/encoders/ the sentence encoder exported to ONNX (scripts/export_sentence_encoder.py).
#   nginx-light, redis-server, openssl (apt): the production profile's proxy and lock store;
#   rabbitmq-server (apt): the cluster profile's event stream (deploy/cluster/, tests/cluster).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

requirements_stamp() { cat requirements.txt requirements.lock | sha256sum | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
  PY310="$(find_python310)"
  say "Creating .venv with $PY310"
  "$PY310" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.requirements.sha" 2>/dev/null)" != "$(requirements_stamp)" ]; then
  # A full install takes ~8 GB (torch with its CUDA wheels, TensorFlow) plus pip's temporary copies: say so up front
  # instead of failing half-way with "No space left on device" (a CI run did, on a disk filled by old clones).
  free_kb="$(df -Pk "$VENV" | awk 'NR == 2 {print $4}')"
  if [ -n "$free_kb" ] && [ "$free_kb" -lt $((12 * 1024 * 1024)) ] && [ ! -f "$VENV/.requirements.sha" ]; then
    die "only $((free_kb / 1024 / 1024)) GB free on the disk of $VENV; installing the Python packages needs about 12 GB (free some space, e.g. old clones or /tmp, and run again)"
  fi
  say "Installing Rasa, the action server and the connector into .venv (first time: ~10 minutes, torch is large)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "pip<24.1" wheel
  "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
    -r requirements.txt -c requirements.lock
  requirements_stamp > "$VENV/.requirements.sha"
else
  say ".venv is up to date"
fi
# The project's one WhatsApp Cloud API client (whatsapp_cloud/), editable: the connector runs this
# checkout's code. The inbox's environment gets it too (inbox/scripts/setup_env.sh).
if [ "$(cat "$VENV/.whatsapp_cloud.sha" 2>/dev/null)" != "$(sha256sum whatsapp_cloud/pyproject.toml | cut -d' ' -f1)" ]; then
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps -e whatsapp_cloud
  sha256sum whatsapp_cloud/pyproject.toml | cut -d' ' -f1 > "$VENV/.whatsapp_cloud.sha"
fi

say "Building the spaCy pipeline (skipped when up to date)"
TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" scripts/build_spacy_pipeline.py

say "Exporting the sentence encoder to ONNX (skipped when up to date)"
"$VENV/bin/python" scripts/export_sentence_encoder.py 2> >(grep -v -i "warn\|opset9\|^\s*$" >&2)

say "Fitting the knowledge base (skipped when its fit is cached)"
TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" scripts/fit_knowledge_base.py 2> >(grep -v -i "tensorflow\|cuda\|^\s*$" >&2) \
  || die "the knowledge base (data/knowledge_base.yml) does not load"

say "Encoding the second opinion's labelled turns (skipped when cached in build/second_opinion_embeddings)"
TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -m components.second_opinion 2> >(grep -v -i "tensorflow\|cuda\|warn\|^\s*$" >&2) \
  || die "the second opinion's labelled turns (data/second_opinion/turns.yml) do not load"

# The production profile's proxy and lock store (scripts/production.sh, tests/production) and the cluster
# profile's RabbitMQ (scripts/cluster.sh, tests/cluster), from Debian.
if ! command -v nginx >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 \
   || [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  say "Installing nginx, Redis, openssl and RabbitMQ with apt-get (production and cluster profiles and their tests)"
  [ "$(id -u)" = 0 ] || die "nginx-light, redis-server, openssl or rabbitmq-server is missing; install them with apt-get (needs root)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light redis-server openssl rabbitmq-server
fi

say "Setting up the inbox environment"
bash inbox/scripts/setup_env.sh
