"""A small social graph on Prism: people, who follows whom, who knows whom, on the embedded SQLite default.

Generate the clients first (the README's quick start does it):

    prism generate examples/proto -o examples/gen
    python examples/social.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# The generated package acme.social.v1 lives in examples/gen.
sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

from acme.social.v1 import social_pb2, social_prism

import prism_runtime
from prism_runtime import Direction


async def main(url: str | None = None) -> None:
    """Build a small network and walk it."""
    async with prism_runtime.connect(url) as db:  # no argument: ./prism.db, or $PRISM_URL
        follows = social_prism.FollowsGraph(db)
        knows = social_prism.KnowsGraph(db)

        cities = {"ada": "London", "bob": "Oslo", "cy": "Oslo", "dee": "Rome", "eve": "Rome"}
        await follows.add_nodes(social_pb2.Person(person_id=p, city=c) for p, c in cities.items())
        pairs = [("ada", "bob"), ("bob", "cy"), ("cy", "ada"), ("cy", "dee"), ("eve", "eve")]
        await follows.add_edges(social_pb2.Follows(follower_id=a, followee_id=b) for a, b in pairs)
        await follows.add_edge(social_pb2.Follows(follower_id="ada", followee_id="dee", muted=True))
        await knows.add_edge(social_pb2.Knows(a_id="dee", b_id="ada", context="school"))

        print("ada follows:", await follows.neighbors("ada"))
        print("ada follows, not muted:", await follows.neighbors("ada", edge_filter={"muted": False}))
        print("ada's followers:", await follows.neighbors("ada", Direction.IN))
        print("within 2 hops of ada:", [(v.node, v.depth) for v in await follows.bfs("ada", 2)])
        print("depth first from ada:", [v.node for v in await follows.dfs("ada", 3)])
        print(
            "in Oslo, reachable from ada:",
            [v.node for v in await follows.bfs("ada", 3, node_filter={"city": "Oslo"})],
        )
        print(
            "ada -> dee, shortest:",
            await follows.shortest_path("ada", "dee", 4, edge_filter={"muted": False}),
        )
        print("ada -> eve:", await follows.shortest_path("ada", "eve", 4))
        print("people within 3 hops of bob:", await follows.k_hop_count("bob", 3))
        print("dee knows:", await knows.neighbors("dee"), "| ada knows:", await knows.neighbors("ada"))


if __name__ == "__main__":
    asyncio.run(main())
