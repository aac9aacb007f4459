#!/usr/bin/env bash
# NLU cross-validation on our own data; prints the intent summary (the report stays in results/).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_environment
FOLDS="${NLU_FOLDS:-3}"
"$VENV/bin/rasa" test nlu --nlu data/nlu --config config.yml --cross-validation --folds "$FOLDS" \
  --out results/nlu-cross-validation > results/nlu-cross-validation.log 2>&1 \
  || { tail -n 40 results/nlu-cross-validation.log; exit 1; }
grep -A 4 -E "Intent evaluation results" results/nlu-cross-validation.log | grep -E "test (Accuracy|F1-score|Precision)" || true
"$VENV/bin/python" - <<'PY'
import json
report = json.load(open("results/nlu-cross-validation/intent_report.json"))
summary = report.get("weighted avg", {})
print(f"NLU cross-validation ({__import__('os').environ.get('NLU_FOLDS', '3')} folds): "
      f"accuracy {report.get('accuracy', 0):.3f}, weighted F1 {summary.get('f1-score', 0):.3f}")
worst = sorted(((v["f1-score"], k) for k, v in report.items() if isinstance(v, dict) and "support" in v
                and k not in ("micro avg", "macro avg", "weighted avg")))[:3]
print("lowest-F1 intents: " + ", ".join(f"{name} {score:.2f}" for score, name in worst))
PY
