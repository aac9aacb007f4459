"""Build the project's own small English spaCy pipeline and save it to disk.

No pretrained English model can be downloaded on our machines, and Rasa's SpacyNLP only needs a
tokenizer, lemmas and (for SpacyEntityExtractor) entities. So we assemble one from code: a blank
English tokenizer, the lookup lemmatizer from spacy-lookups-data, and an entity ruler whose patterns
live in nlp/entity_patterns.yml.

Usage: python scripts/build_spacy_pipeline.py [--patterns nlp/entity_patterns.yml] [--out build/spacy/en_kesar_lane]
The build is skipped when the output is newer than the patterns file and this script (use --force).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import spacy
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATTERNS = ROOT / "nlp" / "entity_patterns.yml"
DEFAULT_OUT = ROOT / "build" / "spacy" / "en_kesar_lane"


def load_patterns(path: Path) -> list[dict]:
    """Read label -> list of token patterns, and turn them into entity-ruler patterns."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise SystemExit(f"{path}: expected a mapping of entity label -> list of token patterns")
    patterns = []
    for label, token_patterns in raw.items():
        if not isinstance(token_patterns, list) or not token_patterns:
            raise SystemExit(f"{path}: label '{label}' needs a non-empty list of token patterns")
        for number, pattern in enumerate(token_patterns, start=1):
            if not isinstance(pattern, list) or not all(isinstance(t, dict) for t in pattern):
                raise SystemExit(f"{path}: pattern {number} of '{label}' must be a list of token dicts")
            patterns.append({"label": label, "pattern": pattern, "id": f"{label}-{number}"})
    return patterns


def build(patterns_path: Path) -> "spacy.language.Language":
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    ruler = nlp.add_pipe("entity_ruler", config={"validate": True, "phrase_matcher_attr": "LOWER"})
    nlp.initialize()  # loads the lemma lookup tables from spacy-lookups-data
    ruler.add_patterns(load_patterns(patterns_path))
    nlp.meta.update(
        {
            "name": "kesar_lane",
            "version": "1.0.0",
            "description": "Blank English + lookup lemmatizer + rule-based entities (order numbers, sizes, opt-in/out)",
        }
    )
    return nlp


def is_up_to_date(out: Path, inputs: list[Path]) -> bool:
    marker = out / "meta.json"
    return marker.exists() and all(marker.stat().st_mtime >= p.stat().st_mtime for p in inputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=Path, default=DEFAULT_PATTERNS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    if not args.force and is_up_to_date(args.out, [args.patterns, Path(__file__)]):
        print(f"spaCy pipeline up to date: {args.out}")
        return 0
    nlp = build(args.patterns)
    args.out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(args.out)
    print(f"spaCy pipeline built: {args.out} (pipes: {', '.join(nlp.pipe_names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
