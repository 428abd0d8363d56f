"""Generated TimeSeries vs the raw drivers doing the same work, on the same servers, in one run.

* append_many throughput: `ClickEventSeries.append_many` vs a raw aiokafka producer (serialize, key,
  timestamp, event-id header, acks=all, wait for every ack) and raw nats-py JetStream `publish_async`
  (serialize, Nats-Msg-Id header, wait for every ack). Ratio = generated / raw (goal >= 0.9).
* single append ack latency p50/p99, generated and raw.
* query read throughput (records/s) on Kafka, NATS and SQLite; on Kafka and NATS against a raw read of the
  same key from the same topic or subject (new consumer, read to the end, keep the key's records, parse,
  drop repeated event ids, sort by event time), the sides taking turns.

Starts Tansu and nats-server with prism_stack unless PRISM_TEST_KAFKA / PRISM_TEST_NATS are set.
Run: python bench/bench_timeseries.py [--records 20000] [--rounds 3] [--latency 500] [--queries 10]
     [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from nats.js import api
from record import Run, side

import prism_runtime
import prism_stack as stack
from prism_runtime.backends.kafka import partition_of
from prism_runtime.backends.nats import subject_of
from prism_runtime.timeseries import digest
from protoc_gen_prism.protoc_runner import generate

ROOT = Path(__file__).resolve().parents[1]
KEYS = 100
RAW = {"kafka": "aiokafka", "nats": "nats-py"}


def load_generated(out: Path) -> tuple[Any, Any]:
    """Generate the example schemas into `out` and import the events modules."""
    result = generate(ROOT / "examples" / "proto", out)
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(out))
    from acme.events.v1 import events_pb2, events_prism

    return events_pb2, events_prism


def clicks(pb2: Any, count: int, run: str) -> list[Any]:
    """Return `count` distinct click events over KEYS users."""
    out = []
    for i in range(count):
        event = pb2.ClickEvent(
            user_id=f"{run}-{i % KEYS}", page=f"/p/{i}", referrer="https://example.com/", dwell_ms=i
        )
        event.at.FromMilliseconds(1_714_564_800_000 + i)
        out.append(event)
    return out


async def timed(work: Any) -> float:
    """Return the seconds `work()` takes."""
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


async def timed_with_cpu(work: Any, cpu: list[float]) -> float:
    """Return the seconds `work()` takes; append the CPU seconds this process spent on it to `cpu`.

    The server shares the machine: wall time moves with what else runs, this process's CPU time much less,
    so the two together tell a slower client from a busier machine.
    """
    start = time.process_time()
    seconds = await timed(work)
    cpu.append(time.process_time() - start)
    return seconds


async def raw_kafka_append(producer: Any, topic: str, events: list[Any]) -> None:
    """Send like the generated code does: serialized value, key, timestamp, id header; wait for all acks."""
    pending = []
    for e in events:
        payload = e.SerializeToString(deterministic=True)
        pending.append(
            await producer.send(
                topic,
                value=payload,
                key=e.user_id.encode(),
                timestamp_ms=e.at.ToMilliseconds(),
                headers=[("prism-event-id", digest(payload).encode())],
            )
        )
    await asyncio.gather(*pending)


async def raw_nats_append(js: Any, subject: str, events: list[Any]) -> None:
    """Publish like the generated code does: serialized payload, Nats-Msg-Id; wait for all acks."""
    pending = []
    for e in events:
        payload = e.SerializeToString(deterministic=True)
        pending.append(
            await js.publish_async(
                f"{subject}.{e.user_id}", payload, headers={"Nats-Msg-Id": digest(payload)}
            )
        )
    await asyncio.gather(*pending)


def events_of(pb2: Any, found: list[tuple[str, bytes]]) -> list[Any]:
    """Parse (event id, payload) pairs, keep the first of each id, and sort by event time."""
    seen: set[str] = set()
    out = []
    for event_id, payload in found:
        if event_id not in seen:
            seen.add(event_id)
            out.append(pb2.ClickEvent.FromString(payload))
    out.sort(key=lambda e: e.at.ToNanoseconds())
    return out


async def raw_kafka_query(kafka: str, topic: str, partitions: list[int], key: str, pb2: Any) -> list[Any]:
    """Read every event of `key` the way the generated code does, with a raw aiokafka consumer."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        raw_key = key.encode()
        tp = TopicPartition(topic, partition_of(raw_key, partitions))
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        found = []
        while await consumer.position(tp) < end:
            for r in (await consumer.getmany(tp, timeout_ms=200)).get(tp, []):
                if r.key == raw_key:
                    found.append((dict(r.headers)["prism-event-id"].decode(), r.value))
        return events_of(pb2, found)
    finally:
        await consumer.stop()


async def raw_nats_query(js: Any, stream: str, key: str, pb2: Any) -> list[Any]:
    """Read every event of `key` the way the generated code does, with a raw nats-py pull consumer."""
    config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL, ack_policy=api.AckPolicy.NONE)
    sub = await js.pull_subscribe(subject_of(stream, key), stream=stream, config=config)
    try:
        found = []
        pending = (await sub.consumer_info()).num_pending or 0
        while pending > 0:
            msgs = await sub.fetch(min(pending, 1024), timeout=5)
            found.extend((m.headers["Nats-Msg-Id"], m.data) for m in msgs)
            pending = msgs[-1].metadata.num_pending
        return events_of(pb2, found)
    finally:
        await sub.unsubscribe()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Return (p50, p99) in milliseconds."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3


async def bench(
    kafka: str, nats_url: str, pb2: Any, prism: Any, args: argparse.Namespace, tmp: Path
) -> list[dict[str, Any]]:
    """Run every measurement, print the table and return the figures for --json."""
    figures: list[dict[str, Any]] = []
    n = args.records
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", enable_idempotence=False)
    await producer.start()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    raw_stream = f"bench_raw_{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=raw_stream, subjects=[f"{raw_stream}.>"], duplicate_window=120)
    raw_topic = f"bench_raw_{uuid.uuid4().hex[:8]}"
    await producer.send_and_wait(raw_topic, b"warm-up")
    urls = {"kafka": f"kafka://{kafka}?idempotence=false", "nats": nats_url}
    print(f"records per round: {n}, rounds: {args.rounds} (median shown), keys: {KEYS}")
    print(
        f"{'backend':8} {'generated rec/s':>16} {'raw rec/s':>12} {'ratio':>6}   client CPU µs/rec: gen   raw"
    )
    for kind, url in urls.items():
        gen_times: list[float] = []
        raw_times: list[float] = []
        gen_cpu: list[float] = []
        raw_cpu: list[float] = []
        async with prism_runtime.connect(url) as db:
            series = prism.ClickEventSeries(db)
            await series.append(clicks(pb2, 1, f"warm-{kind}")[0])
            for round_ in range(args.rounds):
                run = uuid.uuid4().hex[:8]
                gen_events, raw_events = clicks(pb2, n, f"g{run}"), clicks(pb2, n, f"r{run}")
                if kind == "kafka":
                    raw_work = lambda e=raw_events: raw_kafka_append(producer, raw_topic, e)  # noqa: E731
                else:
                    raw_work = lambda e=raw_events: raw_nats_append(js, raw_stream, e)  # noqa: E731
                gen_work = lambda e=gen_events, s=series: s.append_many(e)  # noqa: E731
                # Alternate which goes first, so neither always meets a warmer (or fuller) server.
                if round_ % 2:
                    gen_times.append(await timed_with_cpu(gen_work, gen_cpu))
                    raw_times.append(await timed_with_cpu(raw_work, raw_cpu))
                else:
                    raw_times.append(await timed_with_cpu(raw_work, raw_cpu))
                    gen_times.append(await timed_with_cpu(gen_work, gen_cpu))
            gen, raw = n / statistics.median(gen_times), n / statistics.median(raw_times)
            gen_us, raw_us = (statistics.median(c) / n * 1e6 for c in (gen_cpu, raw_cpu))
            print(f"{kind:8} {gen:16,.0f} {raw:12,.0f} {gen / raw:6.2f}   {gen_us:22.1f} {raw_us:5.1f}")
            figures.append(
                {
                    "figure": f"append_many {kind}",
                    "unit": "records/s",
                    "sides": {
                        "generated": side(gen, cpu_us_per_record=gen_us),
                        f"raw {RAW[kind]}": side(raw, cpu_us_per_record=raw_us),
                    },
                    "ratio": gen / raw,
                }
            )

    async def raw_append(kind: str, e: Any) -> None:
        """Append one event the way the generated code does, with the raw driver; wait for its ack."""
        payload = e.SerializeToString(deterministic=True)
        if kind == "kafka":
            await producer.send_and_wait(
                raw_topic,
                payload,
                key=e.user_id.encode(),
                timestamp_ms=e.at.ToMilliseconds(),
                headers=[("prism-event-id", digest(payload).encode())],
            )
        else:
            await js.publish(f"{raw_stream}.{e.user_id}", payload, headers={"Nats-Msg-Id": digest(payload)})

    print()
    print(f"single append ack latency over {args.latency} appends (ms)")
    print(f"{'backend':8} {'gen p50':>8} {'gen p99':>8} {'raw p50':>8} {'raw p99':>8}")
    for kind, url in urls.items():
        async with prism_runtime.connect(url) as db:
            series = prism.ClickEventSeries(db)
            gen_s: list[float] = []
            raw_s: list[float] = []
            for i, e in enumerate(clicks(pb2, args.latency, f"lat-{uuid.uuid4().hex[:8]}")):
                append_gen = lambda e=e, s=series: s.append(e)  # noqa: E731
                append_raw = lambda e=e, k=kind: raw_append(k, e)  # noqa: E731
                sides = [(gen_s, append_gen), (raw_s, append_raw)]
                for samples, work in sides[i % 2 :] + sides[: i % 2]:  # each side first every other time
                    samples.append(await timed(work))
            g50, g99 = percentiles(gen_s)
            r50, r99 = percentiles(raw_s)
            print(f"{kind:8} {g50:8.2f} {g99:8.2f} {r50:8.2f} {r99:8.2f}")
            gen, raw = len(gen_s) / sum(gen_s), len(raw_s) / sum(raw_s)
            figures.append(
                {
                    "figure": f"append {kind}",
                    "unit": "appends/s (one at a time)",
                    "sides": {"generated": side(gen, g50, g99), f"raw {RAW[kind]}": side(raw, r50, r99)},
                    "ratio": gen / raw,
                }
            )
    print()
    print(f"query read throughput: every event of one key ({n // KEYS} per key, {args.queries} keys)")
    urls_q = {**urls, "sqlite": f"sqlite:///{tmp / 'bench.db'}"}
    for kind, url in urls_q.items():
        async with prism_runtime.connect(url) as db:
            series = prism.ClickEventSeries(db)
            run = f"q{uuid.uuid4().hex[:8]}"
            await series.append_many(clicks(pb2, n, run))
            ns = series.spec.namespace
            partitions = sorted(await producer.partitions_for(ns)) if kind == "kafka" else []

            async def query_gen(key: str, s: Any = series) -> int:
                return len([e async for e in s.query(key)])

            async def query_raw(key: str, k: str = kind, ns: str = ns, parts: list[int] = partitions) -> int:
                if k == "kafka":
                    return len(await raw_kafka_query(kafka, ns, parts, key, pb2))
                return len(await raw_nats_query(js, ns, key, pb2))

            sides = [("generated", query_gen)] + ([("raw", query_raw)] if kind in RAW else [])
            spent = {name: [0, 0.0] for name, _ in sides}
            for i in range(args.queries):
                for name, query in sides[i % len(sides) :] + sides[: i % len(sides)]:
                    start = time.perf_counter()
                    spent[name][0] += await query(f"{run}-{i}")
                    spent[name][1] += time.perf_counter() - start
            rate = {name: count / seconds for name, (count, seconds) in spent.items()}
            ms = {name: seconds / args.queries * 1e3 for name, (_, seconds) in spent.items()}
            line = f"{kind:8} {rate['generated']:12,.0f} records/s ({ms['generated']:.1f} ms per query)"
            figure: dict[str, Any] = {
                "figure": f"query {kind}",
                "unit": "records/s",
                "sides": {"generated": side(rate["generated"], ms_per_query=ms["generated"])},
            }
            if "raw" in rate:
                line += f", raw {rate['raw']:12,.0f} ({ms['raw']:.1f} ms), ratio {rate['generated'] / rate['raw']:.2f}"
                figure["sides"][f"raw {RAW[kind]}"] = side(rate["raw"], ms_per_query=ms["raw"])
                figure["ratio"] = rate["generated"] / rate["raw"]
            print(line)
            figures.append(figure)
    await producer.stop()
    await nc.close()
    return figures


def main() -> None:
    """Start (or use) the servers, generate the example schemas, and bench."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency", type=int, default=500)
    parser.add_argument("--queries", type=int, default=10, help="keys queried per backend")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    run = Run()
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as tmp_name:
        tmp = Path(tmp_name)
        started = []
        kafka = os.environ.get("PRISM_TEST_KAFKA", "").removeprefix("kafka://")
        nats_url = os.environ.get("PRISM_TEST_NATS", "")
        if not kafka:
            started.append(stack.start("kafka", tmp / "kafka"))
            kafka = started[-1].address
        if not nats_url:
            started.append(stack.start("nats", tmp / "nats"))
            nats_url = started[-1].url
        try:
            pb2, prism = load_generated(tmp / "gen")
            figures = asyncio.run(bench(kafka, nats_url, pb2, prism, args, tmp))
        finally:
            for server in started:
                stack.stop(server)
    if args.json is not None:
        run.write(args.json, "timeseries", figures)


if __name__ == "__main__":
    main()
