"""The protobuf-style client of tests/test_betterproto.py, in a process of its own.

Both styles of one schema share its proto package (as they do in a service), so they cannot be imported
into one process; the test drives this one with JSON on stdin:
`python betterproto_peer.py TREE URL MODULE` with a list of calls of a store's method: a write
`{"store": "ProfileStore", "op": "put", "message": "Profile", "data": HEX}` or a read
`{"store": "ProfileStore", "op": "get", "args": ["u1"]}`, and reads one JSON list with a result per read: the
deterministic encoding (hex) of the message read (a list of them for `query`), null where there is none.
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
            method = getattr(store, command["op"])
            if "data" in command:  # a write: put, append, add_node, add_edge
                await method(getattr(pb2, command["message"]).FromString(bytes.fromhex(command["data"])))
                continue
            got = method(*command["args"])  # a read: get, get_edge, get_node, query
            if hasattr(got, "__aiter__"):
                results.append([m.SerializeToString(deterministic=True).hex() async for m in got])
            else:
                found = await got
                results.append(None if found is None else found.SerializeToString(deterministic=True).hex())
    return results


if __name__ == "__main__":
    tree_dir, database_url, module_name = sys.argv[1:4]
    print(json.dumps(asyncio.run(run(tree_dir, database_url, module_name, json.load(sys.stdin)))))
