"""Line charts as server-rendered SVG: the geometry is computed here, the template only draws it."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 360, 140, 52, 18, 8


@dataclass(frozen=True)
class Line:
    """One series: its legend, CSS class and SVG polyline points."""

    label: str
    css: str
    points: str


@dataclass(frozen=True)
class Chart:
    """A chart ready to draw: size, plot area, lines and the axis labels."""

    title: str
    lines: tuple[Line, ...]
    top_label: str
    start_label: str
    end_label: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PAD_LEFT
    bottom: int = HEIGHT - PAD_BOTTOM
    top: int = PAD_TOP

    @property
    def empty(self) -> bool:
        """Return whether there is nothing to draw yet."""
        return not any(line.points for line in self.lines)


def _clock(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.UTC).strftime("%H:%M:%S")


def line_chart(
    title: str,
    times: Sequence[float],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    label: Callable[[float], str],
) -> Chart:
    """Return a chart of `series` (legend, css class, one value or None per time) against `times`."""
    values = [v for _, _, ys in series for v in ys if v is not None]
    top = max(values, default=0.0) or 1.0
    span = (times[-1] - times[0]) if len(times) > 1 else 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    lines = []
    for legend, css, ys in series:
        points = [
            f"{PAD_LEFT + plot_w * (t - times[0]) / span:.1f},{PAD_TOP + plot_h * (1 - y / top):.1f}"
            for t, y in zip(times, ys, strict=True)
            if y is not None
        ]
        lines.append(Line(legend, css, " ".join(points) if len(points) > 1 else ""))
    start, end = (_clock(times[0]), _clock(times[-1])) if times else ("", "")
    return Chart(title, tuple(lines), label(top), start, end)


def per_second(value: float) -> str:
    """Return an ops/s axis label."""
    return f"{value:.3g}/s"


def milliseconds(value: float) -> str:
    """Return a latency axis label, from seconds."""
    return f"{value * 1000:.3g} ms"
