"""Generated graph clients are typed: a user program passes mypy --strict, a wrong filter or key does not."""

from __future__ import annotations

from pathlib import Path

from test_typing import mypy

USER_PROGRAM = """
from __future__ import annotations

import prism_runtime
from acme.social.v1 import social_pb2, social_prism


async def main() -> None:
    async with prism_runtime.connect() as db:
        follows = social_prism.FollowsGraph(db)
        await follows.add_node(social_pb2.Person(person_id="ada", city="London"))
        await follows.add_edge(social_pb2.Follows(follower_id="ada", followee_id="bob"))
        who: list[str] = await follows.neighbors("ada", prism_runtime.Direction.IN, edge_filter={"muted": False})
        for visit in await follows.bfs("ada", 2, node_filter={"city": "London"}, fanout=50):
            print(visit.node.upper(), visit.depth + 1)
        path: list[str] | None = await follows.shortest_path("ada", "bob", 4, direction="both")
        count: int = await follows.k_hop_count("ada", 2)
        node: social_pb2.Person | None = await follows.get_node("ada")
        edges: list[social_pb2.Follows] = await follows.out_edges("ada")
        likes = social_prism.LikesEdges(db)
        posts: list[int] = await likes.targets("ada", edge_filter={"reaction": social_pb2.Likes.REACTION_LOVE})
        fans: list[str] = await likes.sources(7)
        print(who, path, count, node, edges, posts, fans)
"""

WRONG_PROGRAM = """
import prism_runtime
from acme.social.v1 import social_prism


async def main(db: prism_runtime.Database) -> None:
    follows = social_prism.FollowsGraph(db)
    await follows.neighbors("ada", edge_filter={"mutd": True})
    await follows.bfs(42, 2)
    await social_prism.LikesEdges(db).sources("not-a-post-id")
"""


def test_a_graph_program_passes_mypy_strict(generated: Path) -> None:
    program = generated / "graph_program.py"
    program.write_text(USER_PROGRAM)
    done = mypy(program, cwd=generated)
    program.unlink()
    assert done.returncode == 0, done.stdout


def test_mypy_catches_a_wrong_filter_field_and_wrong_key_types(generated: Path) -> None:
    program = generated / "graph_wrong.py"
    program.write_text(WRONG_PROGRAM)
    done = mypy(program, cwd=generated)
    program.unlink()
    assert done.returncode == 1
    assert (
        'Argument "edge_filter" to "neighbors" of "Graph" has incompatible type "dict[str, bool]"; expected "FollowsFilter | None"'
        in done.stdout
    )
    assert 'Argument 1 to "bfs" of "Graph" has incompatible type "int"; expected "str"' in done.stdout
    assert 'Argument 1 to "sources" of "EdgeStore" has incompatible type "str"; expected "int"' in done.stdout
