"""Leave-one-set-out measurement of the learnt second opinion (components/second_opinion.py): how many turns its
person / topic reading would set right, and how many it would make wrong, at each limit.

Every used-up set of data/second_opinion/turns.yml (the main set's dev part and each separate hold-out) is left out
in turn: a second opinion is trained exactly as the component trains (the same turns, encoders, embedding cache and
logistic regression) on the other sets, and reads the left-out set's customer turns. Its reading counts only where
the component would apply it: the pipeline WITHOUT the second opinion (escalation.yml `second_opinion.enabled: false`
in a copy, passed as ESCALATION_SETTINGS) read the turn as one of `replaces` or under `replaces_below`, and no
designer rule decided it. A turn is then

    gained       its label is that person or topic, which the pipeline had missed;
    made wrong   its label is not a hand-off for a person or topic (an answer, a reply, an honest "not sure");
    wrong class  its label is another person or topic (wrong before too).

Caution when reading the figures: the phrase lists and NLU examples were tuned on these same sets, so the pipeline
already gets most of their people and topics right and the gains here are far below what fresh traffic gives; the
turns made wrong are the honest part. Sets named with `--report-apart` (hold-outs whose first run came after the
last round of tuning) are printed on their own.

    .venv/bin/python bench/second_opinion_folds.py --model models/kesar-lane.tar.gz \\
        --parsed build/second_opinion_parsed.jsonl --report-apart holdout36 holdout37

The pipeline's readings (about 13,600 turns, ~6 minutes) are written to `--parsed` and reused when that file exists
and was made from the same model and turns.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from bench import conversation_eval  # noqa: E402
from components import second_opinion  # noqa: E402
from components.follow_ups import FollowUpMarkers  # noqa: E402
from scripts.second_opinion_turns import OTHER, class_of, conversations_of, labelled_turns, shipped_splits  # noqa: E402

LIMITS = (0.7, 0.8, 0.85, 0.9, 0.95, 0.97)


def _fingerprint(model: Path) -> str:
    digest = hashlib.sha256()
    for path in (model, ROOT / "data" / "second_opinion" / "turns.yml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def parse_turns(model: Path, splits: Sequence[str], out: Path) -> List[dict]:
    """Every customer turn of `splits` read by `model` with the second opinion turned off (one JSON line each)."""
    settings = yaml.safe_load((ROOT / "escalation.yml").read_text(encoding="utf-8"))
    settings.setdefault(second_opinion.SECTION, {})["enabled"] = False
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False, encoding="utf-8") as handle:
        yaml.safe_dump(settings, handle, allow_unicode=True)
    os.environ["ESCALATION_SETTINGS"] = handle.name
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    fingerprint = _fingerprint(model)
    records: List[dict] = []

    async def run() -> None:
        for conversation in conversations_of(splits):
            for number, turn in enumerate(conversation.turns):
                if turn.is_reaction or not (turn.text or "").strip():
                    continue
                parsed = await agent.parse_message(turn.text)
                ranking = [entry for entry in parsed.get("intent_ranking") or [] if entry["name"] != "nlu_fallback"]
                before_fallback = ranking[0] if ranking else parsed["intent"]
                records.append({
                    "split": conversation.split, "conversation": conversation.id, "turn": number, "text": turn.text,
                    "class": class_of(turn.expect), "intent": parsed["intent"]["name"],
                    "reading": before_fallback["name"], "confidence": before_fallback.get("confidence"),
                    "decided": sorted(key for key in second_opinion.DECIDED_KEYS if parsed.get(key)),
                    "model": fingerprint,
                })

    asyncio.run(run())
    os.unlink(handle.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return records


def fit(turns: Dict[str, List[str]], encoders, c: float):
    from sklearn.linear_model import LogisticRegression

    texts = [text for name in turns for text in turns[name]]
    labels = [name for name in turns for _ in turns[name]]
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
    model.fit(second_opinion.encode(texts, encoders, second_opinion.cache_directory()), labels)
    return model


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "kesar-lane.tar.gz")
    parser.add_argument("--parsed", type=Path, default=ROOT / "build" / "second_opinion_parsed.jsonl")
    parser.add_argument("--report-apart", nargs="*", default=[], help="used-up splits printed on their own")
    parser.add_argument("--show", type=float, default=None, help="list the turns changed at this limit")
    parser.add_argument("--only", nargs="*", default=None, help="leave out only these splits in turn (a quick check)")
    args = parser.parse_args(argv)

    config = next(item for item in yaml.safe_load((ROOT / "config.yml").read_text())["pipeline"]
                  if item["name"].endswith("SecondOpinion"))
    config = {**second_opinion.SecondOpinion.get_default_config(), **config}
    section = yaml.safe_load((ROOT / "escalation.yml").read_text(encoding="utf-8"))[second_opinion.SECTION]
    replaces, below = set(section["replaces"]), float(section["replaces_below"])
    splits = shipped_splits()
    folds = [split for split in splits if args.only is None or split in args.only]

    records = []
    if args.parsed.exists():
        records = [json.loads(line) for line in args.parsed.read_text(encoding="utf-8").splitlines()]
        if not records or records[0].get("model") != _fingerprint(args.model) or not set(folds) <= {
                record["split"] for record in records}:
            records = []
    if not records:
        print(f"reading every turn of {len(folds)} splits with {args.model} (second opinion off) …", flush=True)
        records = parse_turns(args.model, folds, args.parsed)
    settings = yaml.safe_load((ROOT / "escalation.yml").read_text(encoding="utf-8"))
    markers = FollowUpMarkers(settings["follow_ups"])

    tallies = {group: {limit: Counter() for limit in LIMITS} for group in ("tuned", *args.report_apart)}
    changed = []
    for fold in folds:
        turns, _ = labelled_turns([split for split in splits if split != fold])
        model = fit(turns, config["encoders"], float(config["regularisation_c"]))
        # Where the component would apply its reading: no designer rule decided the turn, and its gate lets it.
        candidates = [r for r in records if r["split"] == fold and not r["decided"]
                      and second_opinion.is_replaceable(r["reading"], r["confidence"], replaces, below)]
        if not candidates:
            continue
        texts = [markers.question_of(r["text"]).strip() or r["text"] for r in candidates]
        probabilities = model.predict_proba(second_opinion.encode(texts, config["encoders"],
                                                                  second_opinion.cache_directory()))
        group = fold if fold in args.report_apart else "tuned"
        for record, row in zip(candidates, probabilities):
            best = int(np.argmax(row))
            name, p = str(model.classes_[best]), float(row[best])
            if name == OTHER:
                continue
            outcome = "gained" if record["class"] == name else ("made wrong" if record["class"] == OTHER
                                                                 else "wrong class")
            for limit in LIMITS:
                if p >= limit:
                    tallies[group][limit][outcome] += 1
            if args.show is not None and p >= args.show:
                changed.append((outcome, fold, record["conversation"], record["text"], record["class"], name, p))
        print(f"  {fold}: {len(candidates)} turns it could read", flush=True)

    turns_in = Counter(record["split"] if record["split"] in args.report_apart else "tuned" for record in records)
    print("\nlimit   " + "   ".join(f"{group} ({turns_in[group]} turns): gained / made wrong / wrong class"
                                    for group in tallies))
    for limit in LIMITS:
        print(f"{limit:<7} " + "   ".join(
            f"{tallies[group][limit]['gained']:>5} / {tallies[group][limit]['made wrong']:>3} / "
            f"{tallies[group][limit]['wrong class']:>2}".ljust(len(group) + 48) for group in tallies))
    print(f"shipped limit: {section['limit']}")
    for outcome, fold, conversation, text, label, name, p in sorted(changed):
        print(f"  {outcome:11} {fold:10} {conversation:10} {label:>12} -> {name:<12} {p:.3f}  {text[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
