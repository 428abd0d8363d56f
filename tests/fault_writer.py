"""A writer process for tests/test_faults.py: writes numbered batches until it is killed.

Run as ``python fault_writer.py URL kv|ts FIRST_BATCH`` with the generated code on ``PYTHONPATH``. Before
each call it prints ``begin N``; once ``put_many`` (kv) or ``append_many`` (ts) has returned it prints
``ack N``, flushed, so every ``ack`` line the test reads is a write Prism acknowledged. What batch ``N``
holds is a pure function of ``N`` (below), so the test knows what to find without being told.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import sys
from typing import Any

BATCH_ROWS = 400  # big enough that a kill usually lands inside the call, not between two calls
T0 = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)


def row_id(batch: int, row: int) -> str:
    return f"b{batch:06d}-{row:04d}"


def row_value(batch: int, row: int) -> str:
    """A value long enough to span pages, that names its own row so a swapped value shows."""
    return f"{row_id(batch, row)}|" * 12


def event_user(batch: int) -> str:
    return f"writer-{batch:06d}"


def event_page(batch: int, row: int) -> str:
    return f"/batch/{batch}/row/{row}"


def kv_rows(pb2: Any, batch: int) -> list[Any]:
    return [pb2.TextRow(id=row_id(batch, r), value=row_value(batch, r)) for r in range(BATCH_ROWS)]


def ts_events(pb2: Any, batch: int) -> list[Any]:
    events = []
    for r in range(BATCH_ROWS):
        event = pb2.ClickEvent(user_id=event_user(batch), page=event_page(batch, r), dwell_ms=r)
        event.at.FromDatetime(T0 + datetime.timedelta(seconds=batch * BATCH_ROWS + r))
        events.append(event)
    return events


async def write_batch(db: Any, mode: str, batch: int) -> None:
    """Write batch number `batch`: one `put_many` (kv) or one `append_many` (ts)."""
    if mode == "kv":
        pb2 = importlib.import_module("prismtest.bulk.v1.bulk_pb2")
        store = importlib.import_module("prismtest.bulk.v1.bulk_prism").TextRowStore(db)
        await store.put_many(kv_rows(pb2, batch))
    else:
        pb2 = importlib.import_module("acme.events.v1.events_pb2")
        series = importlib.import_module("acme.events.v1.events_prism").ClickEventSeries(db)
        await series.append_many(ts_events(pb2, batch))


async def write_forever(url: str, mode: str, first: int) -> None:
    import prism_runtime

    async with prism_runtime.connect(url) as db:
        batch = first
        while True:
            print(f"begin {batch}", flush=True)
            await write_batch(db, mode, batch)
            print(f"ack {batch}", flush=True)
            batch += 1


if __name__ == "__main__":
    asyncio.run(write_forever(sys.argv[1], sys.argv[2], int(sys.argv[3])))
