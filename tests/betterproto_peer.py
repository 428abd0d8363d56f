"""The protobuf-style client of tests/test_betterproto.py, in a process of its own.

Both styles of one schema share its proto package (as they do in a service), so they cannot be imported
into one process; the test drives this one with JSON on stdin:
`python betterproto_peer.py TREE URL MODULE` with `[{"op": "put", "store": ..., "message": ..., "data": hex},
{"op": "get", "store": ..., "key": [...]}, {"op": "query", "store": ..., "key": ...}, ...]`, and reads one
JSON list of results: the deterministic encoding (hex) of each message read, null where there is none.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Any

import prism_runtime


async def run(tree: str, url: str, module: str, commands: list[dict[str, Any]]) -> list[Any]:
    """Run every command on the protobuf-style stores of `module`; return what the reads returned."""
    sys.path.insert(0, tree)
    prism = importlib.import_module(f"{module}_prism")
    pb2 = importlib.import_module(f"{module}_pb2")
    results: list[Any] = []
    async with prism_runtime.connect(url) as db:
        for command in commands:
            store = getattr(prism, command["store"])(db)
            op = command["op"]
            if op in ("put", "append"):
                message = getattr(pb2, command["message"]).FromString(bytes.fromhex(command["data"]))
                await getattr(store, op)(message)
            elif op == "get":
                got = await store.get(*command["key"])
                results.append(None if got is None else got.SerializeToString(deterministic=True).hex())
            elif op == "query":
                found = [m async for m in store.query(command["key"])]
                results.append([m.SerializeToString(deterministic=True).hex() for m in found])
            else:
                raise ValueError(f"unknown op {op!r}")
    return results


if __name__ == "__main__":
    tree_dir, database_url, module_name = sys.argv[1:4]
    print(json.dumps(asyncio.run(run(tree_dir, database_url, module_name, json.load(sys.stdin)))))
