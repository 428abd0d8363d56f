"""Decode of a row with a JSON column: the direct setters against json_format.ParseDict, per row.

Rows as SQLite returns them (JSON text) and as asyncpg returns JSONB (text too, without a codec), for a
map<string, int64> and a flat message (Inner: a string and a repeated int64); a map of messages is still
ParseDict's. Each figure: a new message, the column's JSON text parsed and set on it. Best of 5 runs.
Run: python bench/bench_codec.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from prism_runtime.sql.codec import RowCodec, json_setter
from prism_runtime.sql.dialects import PostgresDialect, SqliteDialect
from protoc_gen_prism.protoc_runner import generate

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn: Callable[[], Any], rows: int, runs: int = 5) -> float:
    """Return the best per-call time of `fn` in microseconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(rows):
            fn()
        best = min(best, (time.perf_counter() - start) / rows)
    return best * 1e6


def main() -> None:
    """Print microseconds per decode for each column shape and dialect, direct and through ParseDict."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        assert generate(ROOT / "tests" / "protos", Path(tmp)).returncode == 0
        sys.path.insert(0, tmp)
        from prismtest.types.v1 import types_pb2, types_prism

    spec = types_prism._ALL_TYPES_SPEC
    cls = types_pb2.AllTypes
    messages = {
        "map<string, int64>": cls(id="k", counts={"a": 1, "b": 2**40}),
        "flat message": cls(id="k", inner=types_pb2.Inner(label="x", values=[1, 2, 3])),
        "map<int32, Inner> (ParseDict)": cls(id="k", by_id={1: types_pb2.Inner(label="x")}),
    }
    print(f"{'column':32}{'dialect':>10}{'direct us':>11}{'ParseDict us':>14}")
    for dialect in (SqliteDialect(), PostgresDialect()):
        codec = RowCodec(spec, cls, dialect)
        names = [c.name for c in spec.columns]
        for label, message in messages.items():
            row = codec.encode(message)
            field = next(n for n in ("counts", "inner", "by_id") if message.ListFields()[-1][0].name == n)
            i = names.index(field)
            column = spec.columns[i]
            decode_json = dialect.decoder(column)

            setter = json_setter(cls.DESCRIPTOR.fields_by_name[field])

            def through_parsedict(
                row: Any = row, i: int = i, field: str = field, decode: Any = decode_json
            ) -> Any:
                # What the decoder did before: the column's JSON through ParseDict onto a new message.
                m = cls(id=row[0])
                json_format.ParseDict({field: decode(row[i])}, m)
                return m

            def direct_setter(
                row: Any = row, i: int = i, set_field: Any = setter, decode: Any = decode_json
            ) -> Any:
                m = cls(id=row[0])
                set_field(m, decode(row[i]))
                return m

            assert codec.decode(row).SerializeToString(deterministic=True) == message.SerializeToString(
                deterministic=True
            )
            if setter is None:
                direct = float("nan")
            else:
                assert direct_setter().SerializeToString() == through_parsedict().SerializeToString()
                direct = best_of(direct_setter, args.rows)
            parsed = best_of(through_parsedict, args.rows)
            print(f"{label:32}{dialect.name:>10}{direct:11.2f}{parsed:14.2f}")


if __name__ == "__main__":
    main()
