"""One writer process of the audit contention test: audited puts on a shared database, failures counted.

Run as `python audit_writer.py URL GENERATED_DIR NAME CALLS BATCH` with $PRISM_MASTER_KEY_FILE set. It
connects and warms up, prints "ready", waits for a line on stdin (so every writer starts together), then
makes CALLS writes (alternating put_many of BATCH rows and single puts) and prints one JSON line:
{"ok": n, "failed": n, "errors": [first few error texts]}. A failed write is counted, never retried here.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Any

import prism_runtime
from prism_runtime.pii.vault import vault_for


async def main(url: str, generated: str, name: str, calls: int, batch: int) -> dict[str, Any]:
    sys.path.insert(0, generated)
    pb2 = importlib.import_module("prismtest.pii.v1.pii_pb2")
    prism = importlib.import_module("prismtest.pii.v1.pii_prism")
    ok, failed, errors = 0, 0, []
    async with prism_runtime.connect(url) as db:
        store = prism.PatientStore(db)
        # Setup (pool, keys, the audit table's DDL) is not under test here: the parent starts writers one by
        # one, each once the one before is ready, so only the writes below run at the same time.
        await store.get(f"{name}-warm")
        await vault_for(db.backend).audit.ready()
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(calls):
            try:
                if i % 2:
                    await store.put(pb2.Patient(patient_id=f"{name}-{i}", ssn=f"ssn-{name}-{i}"))
                else:
                    await store.put_many(
                        [
                            pb2.Patient(patient_id=f"{name}-{i}-{j}", ssn=f"ssn-{name}-{i}")
                            for j in range(batch)
                        ]
                    )
                ok += 1
            except prism_runtime.PrismError as error:
                failed += 1
                if len(errors) < 5:
                    errors.append(str(error))
    return {"ok": ok, "failed": failed, "errors": errors}


if __name__ == "__main__":
    url, generated, name, calls, batch = sys.argv[1:6]
    print(json.dumps(asyncio.run(main(url, generated, name, int(calls), int(batch)))), flush=True)
