"""Export the sentence encoder(s) the project uses to ONNX, once (components/onnx_encoder.py says why).

Which models: every `model_name` of a SentenceEmbeddingFeaturizer in config.yml and the knowledge
base's `model` in escalation.yml. Each is exported to build/encoders/<model>-<fingerprint>/model.onnx,
and skipped when that file exists (a changed model has a new fingerprint, so it is exported again); its int8
version (components/onnx_encoder.quantize) is written next to it the same way.
A model ONNX cannot serve (not transformer + mean pooling) is reported and left to torch.

Usage: python scripts/export_sentence_encoder.py [--config config.yml] [--settings escalation.yml]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from components import onnx_encoder, use_encoder  # noqa: E402
from components.sentence_encoder import DEFAULT_MODEL, resolve_model_path  # noqa: E402

FEATURIZER = "components.sentence_featurizer.SentenceEmbeddingFeaturizer"


def models_in_use(config_path: Path, settings_path: Path) -> list[str]:
    names = []
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    for component in config.get("pipeline") or []:
        if component.get("name") == FEATURIZER:
            names.append(component.get("model_name") or DEFAULT_MODEL)
    settings = yaml.safe_load(settings_path.read_text(encoding="utf-8")) or {}
    names.append((settings.get("knowledge_base") or {}).get("model") or DEFAULT_MODEL)
    return list(dict.fromkeys(names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--settings", type=Path, default=ROOT / "escalation.yml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in models_in_use(args.config, args.settings):
        if use_encoder.is_use_model(name):
            print(f"  {name}: runs on numpy, nothing to export")
            continue
        model_dir = resolve_model_path(name)
        try:
            onnx_encoder.check_supported(model_dir)
        except onnx_encoder.UnsupportedModel as error:
            print(f"  {name}: stays on torch ({error})")
            continue
        destination = onnx_encoder.export_path(model_dir)
        if destination.exists():
            print(f"  {name}: ONNX export up to date ({destination.relative_to(ROOT) if destination.is_relative_to(ROOT) else destination})")
        else:
            started = time.perf_counter()
            onnx_encoder.export(model_dir, destination)
            print(f"  {name}: exported to ONNX in {time.perf_counter() - started:.0f} s ({destination})")
        # The int8 graph too (precision: int8 in config.yml / escalation.yml): 2 s, 23 MB.
        quantized = onnx_encoder.quantized_path(model_dir)
        if not quantized.exists():
            started = time.perf_counter()
            onnx_encoder.quantize(destination, quantized)
            print(f"  {name}: int8 graph made in {time.perf_counter() - started:.0f} s ({quantized.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
