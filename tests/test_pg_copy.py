"""Binary COPY data written by the native extension stores exactly what asyncpg's own encoders store.

A Postgres put_many of 256 rows or more sends its rows as binary COPY data written by prism_runtime._wire
(prism_runtime.backends.postgres_copy); before, asyncpg encoded each value. The same batches go both ways
into a real server, and the stored rows, read back raw, must be the same, on every field type.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast
from unittest import mock

import pytest
from backends import drop_schema, new_schema
from google.protobuf import json_format
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_wire_rows import all_types

from prism_runtime.backends import postgres_copy
from prism_runtime.backends.postgres_states import COPY_THRESHOLD
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.keyvalue import SqlKeyValue
from protoc_gen_prism.pytest_plugin import provisioned


@pytest.fixture(scope="module")
def types(generated: Path) -> tuple[ModuleType, ModuleType]:
    return (
        importlib.import_module("prismtest.types.v1.types_pb2"),
        importlib.import_module("prismtest.types.v1.types_prism"),
    )


@pytest.fixture(scope="module")
async def all_types_store(
    request: pytest.FixtureRequest, types: tuple[ModuleType, ModuleType], generated: Path
) -> AsyncIterator[SqlKeyValue[Any]]:
    pb2, prism = types
    spec = prism._ALL_TYPES_SPEC
    url = await new_schema(request.getfixturevalue("postgres_dsn"))
    try:
        async with provisioned(url, generated) as db:
            yield SqlKeyValue(spec, pb2.AllTypes, cast(SqlDriver, db.backend_for(spec)))
    finally:
        await drop_schema(url)


async def stored(store: SqlKeyValue[Any], batch: list[Any], *, binary: bool) -> str:
    """Put `batch` the one way or the other into an empty table; return every stored row, raw, as text."""
    table = store.sql.table
    await store.driver.execute_script([f"TRUNCATE {table}"], namespace=store.spec.namespace)
    written: list[bytes | None] = []
    extension = postgres_copy.copy_data

    def copy_data(rows: Any, kinds: tuple[int, ...]) -> bytes | None:
        written.append(extension(rows, kinds) if binary else None)
        return written[-1]

    with mock.patch.object(postgres_copy, "copy_data", copy_data):
        await store.put(batch)
    # One COPY; the binary one only when the extension wrote every value (asyncpg then only sends the bytes).
    assert len(written) == 1 and (written[0] is not None) == binary
    rows = await store.driver.fetch(f"SELECT * FROM {table} ORDER BY id", (), namespace=store.spec.namespace)
    # repr, not ==: a nan is unequal to itself, and repr tells every other float (and -0.0) apart.
    return repr([tuple(row) for row in rows])


def batch_of(messages: list[Any]) -> list[Any]:
    """A batch large enough for COPY, cycling through `messages` under keys of its own."""
    batch = []
    for i in range(COPY_THRESHOLD + 4):
        item = type(messages[0])()
        item.CopyFrom(messages[i % len(messages)])
        item.id = f"k{i:04d}"
        batch.append(item)
    return batch


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_every_field_type_stores_as_asyncpg_stores_it(
    all_types_store: SqlKeyValue[Any], types: tuple[ModuleType, ModuleType], data: st.DataObject
) -> None:
    pb2, _ = types
    messages = data.draw(st.lists(all_types(pb2), min_size=1, max_size=5))
    # Postgres text and JSONB hold no U+0000: both ways fail alike (tests/test_postgres.py covers the error).
    assume(not any("\\u0000" in json_format.MessageToJson(m) for m in messages))
    batch = batch_of(messages)
    assert await stored(all_types_store, batch, binary=True) == await stored(
        all_types_store, batch, binary=False
    )


async def test_a_value_the_extension_does_not_write_goes_to_asyncpg(
    all_types_store: SqlKeyValue[Any], types: tuple[ModuleType, ModuleType]
) -> None:
    """Rows holding a value outside what the extension writes exactly are all left to asyncpg."""
    pb2, _ = types
    kinds = postgres_copy.column_types(all_types_store.spec.columns)
    assert kinds is not None
    rows = all_types_store.codec.encode_rows([pb2.AllTypes(id="a", fl=1.5, u64=7)])
    assert postgres_copy.copy_data(rows, kinds) is not None
    fl = all_types_store.codec.column_index("fl")
    u64 = all_types_store.codec.column_index("u64")
    for column, odd in ((fl, 1e39), (u64, -1), (u64, 2**64), (fl, 1)):  # beyond float32, not a uint64, an int
        row = list(rows[0])
        row[column] = odd
        assert postgres_copy.copy_data([tuple(row)], kinds) is None
    assert math.isinf(pb2.AllTypes(fl=1e39).fl)  # protobuf keeps a float field within float32 itself
