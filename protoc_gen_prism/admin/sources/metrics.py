"""The Metrics page's data: scrape the service's Prometheus endpoint, keep a short window, derive ops/s and
latency quantiles per namespace from the histograms' bucket deltas.

Prism's operations land in two histograms (docs/observability.md), each with the namespace in one label;
every other label (operation, system, server) is summed away.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

HISTOGRAMS = {
    "db_client_operation_duration_seconds": "db_collection_name",
    "messaging_client_operation_duration_seconds": "messaging_destination_name",
}
"""Each histogram Prism records, with the label that names the namespace."""
MISMATCHES = "prism_migration_mismatches"
COUNTERS = {MISMATCHES: "db_collection_name"}
"""Each per-namespace counter the pages read, with the label that names the namespace."""


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts (upper bound, count), ascending and ending at +Inf."""

    buckets: tuple[tuple[float, float], ...]

    @property
    def count(self) -> float:
        """Return the number of observations."""
        return self.buckets[-1][1] if self.buckets else 0.0

    def minus(self, older: Histogram) -> Histogram:
        """Return the observations made since `older` (all of them when the counters were reset)."""
        before = dict(older.buckets)
        delta = tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets)
        if any(n < 0 for _, n in delta):
            return self
        return Histogram(delta)

    def quantile(self, q: float) -> float | None:
        """Return the q-quantile as Prometheus' histogram_quantile estimates it (linear within a bucket)."""
        total = self.count
        if total <= 0:
            return None
        rank = q * total
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return lower  # in the open bucket: its lower bound is all that is known
                in_bucket = cumulative - below
                return lower + (le - lower) * ((rank - below) / in_bucket if in_bucket else 1.0)
            lower, below = le, cumulative
        return lower


def parse(text: str) -> dict[str, Histogram]:
    """Return the histogram of each namespace found in a Prometheus text exposition."""
    return read(text)[0]


def read(text: str) -> tuple[dict[str, Histogram], dict[str, dict[str, float]]]:
    """Return the histogram of each namespace, and each counter's value per namespace, of an exposition."""
    sums: dict[str, dict[float, float]] = {}
    counters: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        counter = COUNTERS.get(family.name.removesuffix("_total"))
        if counter is not None:
            values = counters.setdefault(family.name.removesuffix("_total"), {})
            for sample in family.samples:
                if sample.name.endswith("_total") and counter in sample.labels:
                    ns = sample.labels[counter]
                    values[ns] = values.get(ns, 0.0) + float(sample.value)
            continue
        label = HISTOGRAMS.get(family.name)
        if label is None:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket") or label not in sample.labels:
                continue
            buckets = sums.setdefault(sample.labels[label], {})
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + float(sample.value)
    return {ns: Histogram(tuple(sorted(b.items()))) for ns, b in sums.items()}, counters


@dataclass(frozen=True)
class Snapshot:
    """One scrape: when (monotonic for rates, wall clock for axes) and what."""

    at: float
    wall: float
    histograms: dict[str, Histogram]
    counters: dict[str, dict[str, float]] = field(default_factory=dict)  # counter -> namespace -> value


@dataclass(frozen=True)
class Point:
    """A namespace's rate and latency between two scrapes (or over a whole window)."""

    wall: float
    ops: float
    p50: float | None
    p99: float | None


def between(older: Snapshot, newer: Snapshot, namespace: str) -> Point | None:
    """Return the namespace's ops/s, p50 and p99 over the interval from `older` to `newer`."""
    now = newer.histograms.get(namespace)
    if now is None or newer.at <= older.at:
        return None
    then = older.histograms.get(namespace, Histogram(tuple((le, 0.0) for le, _ in now.buckets)))
    delta = now.minus(then)
    return Point(newer.wall, delta.count / (newer.at - older.at), delta.quantile(0.5), delta.quantile(0.99))


class Window:
    """The scrapes of the last `seconds`, oldest first."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.snapshots: deque[Snapshot] = deque()

    def add(self, snapshot: Snapshot) -> None:
        """Keep `snapshot`; forget those older than the window (keeping one to measure from)."""
        self.snapshots.append(snapshot)
        while len(self.snapshots) > 2 and snapshot.at - self.snapshots[1].at > self.seconds:
            self.snapshots.popleft()

    def namespaces(self) -> list[str]:
        """Return every namespace seen in the window."""
        return sorted({ns for s in self.snapshots for ns in s.histograms})

    def series(self, namespace: str) -> list[Point]:
        """Return one point per interval between consecutive scrapes."""
        pairs = zip(self.snapshots, list(self.snapshots)[1:], strict=False)
        return [p for older, newer in pairs if (p := between(older, newer, namespace)) is not None]

    def rate(self, counter: str, namespace: str) -> float | None:
        """Return a counter's increase per second over the window (None before two scrapes).

        A namespace the counter never named has had no event: its rate is 0.
        """
        if len(self.snapshots) < 2:
            return None
        first, last = self.snapshots[0], self.snapshots[-1]
        if last.at <= first.at:
            return None
        start = first.counters.get(counter, {}).get(namespace, 0.0)
        end = last.counters.get(counter, {}).get(namespace, 0.0)
        return max(end - start, 0.0) / (last.at - first.at)

    def overall(self, namespace: str) -> Point | None:
        """Return the namespace's rate and quantiles over the whole window."""
        if len(self.snapshots) < 2:
            return None
        return between(self.snapshots[0], self.snapshots[-1], namespace)


class Scraper:
    """Scrape `url` every `interval` seconds into a window, in the background of the admin."""

    def __init__(self, url: str, interval: float, window_seconds: float) -> None:
        self.url = url
        self.interval = interval
        self.window = Window(window_seconds)
        self.error = ""
        self.scrapes = 0

    def _fetch(self) -> str:
        with urllib.request.urlopen(self.url, timeout=min(self.interval, 10.0)) as response:
            text: str = response.read().decode()
        return text

    async def scrape(self) -> None:
        """Scrape once; keep the error to show on the page when it fails."""
        try:
            text = await asyncio.to_thread(self._fetch)
            histograms, counters = read(text)
            snapshot = Snapshot(time.monotonic(), time.time(), histograms, counters)
        except (OSError, ValueError) as error:
            self.error = f"cannot scrape {self.url}: {error}"
            return
        self.error = ""
        self.scrapes += 1
        self.window.add(snapshot)

    async def run(self) -> None:
        """Scrape until cancelled."""
        while True:
            started = time.monotonic()
            await self.scrape()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
