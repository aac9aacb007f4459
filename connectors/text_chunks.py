"""Splitting long bot texts into pieces WhatsApp accepts, at natural boundaries."""

from __future__ import annotations

import re
from typing import List, Pattern, Sequence

WHATSAPP_TEXT_LIMIT = 4096

# Strongest boundary first. A sentence ends with . ! ? or the Devanagari danda, then space.
_BOUNDARIES: Sequence[Pattern[str]] = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?\u0964])\s+"),
    re.compile(r"\s+"),
)


def split_text(text: str, limit: int = WHATSAPP_TEXT_LIMIT) -> List[str]:
    """Pieces of at most `limit` characters, cut at paragraph, line, sentence or word
    boundaries (in that order of preference); a word longer than `limit` is cut hard."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    pieces: List[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut, resume = _best_cut(rest, limit)
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[resume:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _best_cut(text: str, limit: int) -> "tuple[int, int]":
    window = text[: limit + 1]  # a boundary right after the limit still yields a full piece
    # Prefer a strong boundary, but not one that leaves a tiny first piece.
    for minimum in (limit // 2, 1):
        for pattern in _BOUNDARIES:
            last = None
            for match in pattern.finditer(window):
                if minimum <= match.start() <= limit:
                    last = match
            if last is not None:
                return last.start(), last.end()
    return limit, limit
