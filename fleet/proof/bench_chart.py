"""The bench's timings as a picture (bench/results.png), to read beside bench/results.md."""

from __future__ import annotations

from pathlib import Path

# The Agg canvas is drawn on directly, without pyplot: no GUI backend is ever picked and no
# global figure state is left behind in the process that called this.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BAR_COLOUR = "#4c78a8"
ROW_INCHES = 0.32


def write_chart(timings: dict[str, dict], path: Path, title: str = "make bench") -> Path:
    """Draw one horizontal bar per timing (its median, in seconds) with a whisker from its min
    to its max, in the order of the results table, and save it as a PNG at `path`."""
    if not timings:
        raise ValueError("there are no timings to chart")
    labels = [name.strip() for name in timings]
    medians = [float(t["median"]) for t in timings.values()]
    below = [median - float(t["min"]) for median, t in zip(medians, timings.values(), strict=True)]
    above = [float(t["max"]) - median for median, t in zip(medians, timings.values(), strict=True)]

    figure = Figure(figsize=(10, 1.4 + ROW_INCHES * len(labels)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = list(range(len(labels)))
    axes.barh(rows, medians, xerr=[below, above], color=BAR_COLOUR, ecolor="black", capsize=3)
    axes.set_yticks(rows, labels=labels)
    axes.invert_yaxis()  # the first measurement on top, as in the table
    for row, median, spread in zip(rows, medians, above, strict=True):
        axes.text(median + spread, row, f" {median:g} s", va="center", fontsize=8)
    axes.margins(x=0.12)  # room for the value written after the longest bar
    axes.grid(axis="x", alpha=0.3)
    axes.set_xlabel("seconds: median, whiskers from min to max")
    axes.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
