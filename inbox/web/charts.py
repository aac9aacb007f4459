"""A small server-rendered SVG bar chart (no chart library, no script: works under a strict CSP)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, BOTTOM, LEFT = 720, 220, 28, 32


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    series_index: int
    title: str


@dataclass
class Chart:
    width: int
    height: int
    rects: list[Rect]
    labels: list[tuple[float, str]]
    gridlines: list[tuple[float, int]]
    series: list[str]


def stacked_bar_chart(bars: list[tuple[str, dict[str, int]]], series: list[str]) -> Chart:
    peak = max([sum(counts.get(name, 0) for name in series) for _, counts in bars] + [1])
    plot_height = HEIGHT - BOTTOM - 8
    slot = (WIDTH - LEFT) / max(len(bars), 1)
    bar_width = max(slot * 0.7, 2)
    rects, labels = [], []
    label_every = max(len(bars) // 10, 1)
    for index, (label, counts) in enumerate(bars):
        x = LEFT + index * slot + (slot - bar_width) / 2
        y = HEIGHT - BOTTOM
        for series_index, name in enumerate(series):
            value = counts.get(name, 0)
            if not value:
                continue
            height = plot_height * value / peak
            y -= height
            rects.append(Rect(x, y, bar_width, height, series_index, f"{label}: {value} × {name}"))
        if index % label_every == 0:
            labels.append((x + bar_width / 2, label))
    steps = sorted({0, peak // 2, peak})
    gridlines = [(HEIGHT - BOTTOM - plot_height * value / peak, value) for value in steps]
    return Chart(WIDTH, HEIGHT, rects, labels, gridlines, series)
