"""Generated code is code: mypy --strict passes on it together with a user program that uses it.

No extra flags: the generated tree is regular packages (`__init__.py` and `py.typed` from the plugin), so
mypy places every module by itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

USER_PROGRAM = """
from __future__ import annotations

import datetime

import prism_runtime
from acme.events.v1 import events_pb2, events_prism
from acme.orders.v1 import orders_pb2, orders_prism
from acme.users.v1 import users_pb2, users_prism
from prismtest.expiry.v1 import expiry_pb2, expiry_prism


async def main() -> None:
    async with prism_runtime.connect() as db:
        users = users_prism.UserProfileStore(db)
        await users.put(users_pb2.UserProfile(user_id="u1", email="a@b.c"))
        got: users_pb2.UserProfile | None = await users.get("u1")
        if got is not None:
            print(got.email.upper())
        await users.put_many([users_pb2.UserProfile(user_id="u2")])
        many: list[users_pb2.UserProfile | None] = await users.get_many(["u1", "u2"])
        async for u in users.scan(limit=100):
            print(u.display_name)
        deleted: bool = await users.delete("u1")
        pros: list[users_pb2.UserProfile] = await users.find_by_tier(users_pb2.TIER_PRO, limit=10, after="u1")
        sessions = expiry_prism.SessionStore(db)
        await sessions.put(expiry_pb2.Session(session_id="s"), ttl=datetime.timedelta(minutes=5))
        await sessions.put_many([expiry_pb2.Session(session_id="t")])
        reminders = expiry_prism.ReminderStore(db)
        due = await reminders.find_by_channel(expiry_pb2.CHANNEL_SMS, after=("amy", 3))
        print(pros, due[0].text.upper())
        orders = orders_prism.OrderStore(db)
        order = await orders.get("c1", "r1")
        async for o in orders.scan("c1", start="r0", reverse=True):
            print(o.total_cents + 1, deleted, many, order)
        clicks = events_prism.ClickEventSeries(db)
        await clicks.append(events_pb2.ClickEvent(user_id="u1", page="/"))
        await clicks.append_many([events_pb2.ClickEvent(user_id="u1")])
        start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
        async for click in clicks.query("u1", start, 1_800_000_000_000, limit=10):
            print(click.page.upper())
        async with clicks.tail(from_=start) as tail:
            async for new in tail:
                print(new.referrer)


def blocking() -> None:
    with prism_runtime.connect_sync() as db:
        users = users_prism.UserProfileSyncStore(db)
        users.put(users_pb2.UserProfile(user_id="u1", email="a@b.c"))
        got: users_pb2.UserProfile | None = users.get("u1")
        many: list[users_pb2.UserProfile | None] = users.get_many(["u1", "u2"])
        for u in users.scan(limit=100):
            print(u.display_name, got, many)
        deleted: bool = users.delete("u1")
        orders = orders_prism.OrderSyncStore(db)
        for o in orders.scan("c1", start="r0", reverse=True):
            print(o.total_cents + 1, deleted, orders.get("c1", "r1"))
        clicks = events_prism.ClickEventSyncSeries(db)
        clicks.append(events_pb2.ClickEvent(user_id="u1", page="/"))
        for click in clicks.query("u1", limit=10):
            print(click.page.upper())
        with clicks.tail() as tail:
            for new in tail:
                print(new.referrer)
"""

WRONG_PROGRAM = """
import prism_runtime
from acme.users.v1 import users_prism


async def main(db: prism_runtime.Database) -> None:
    users = users_prism.UserProfileStore(db)
    await users.get(42)


def blocking(db: prism_runtime.SyncDatabase) -> None:
    users_prism.UserProfileSyncStore(db).get(42)
"""


WRONG_FINDERS = """
import datetime

import prism_runtime
from acme.users.v1 import users_pb2, users_prism


async def main(db: prism_runtime.Database) -> None:
    users = users_prism.UserProfileStore(db)
    await users.find_by_tier("pro")
    await users.put(users_pb2.UserProfile(), ttl=datetime.timedelta(minutes=5))
"""


def mypy(*paths: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            *map(str, paths),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def mypy_modules(*modules: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = [arg for module in modules for arg in ("-p", module)]
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_generated_code_and_a_user_program_pass_mypy_strict(generated: Path) -> None:
    program = generated / "user_program.py"
    program.write_text(USER_PROGRAM)
    clients = sorted(generated.rglob("*_prism.py"))
    done = mypy(program, *clients, cwd=generated)
    assert done.returncode == 0, done.stdout
    program.unlink()


def test_mypy_catches_a_wrong_key_type(generated: Path) -> None:
    program = generated / "wrong_program.py"
    program.write_text(WRONG_PROGRAM)
    done = mypy(program, cwd=generated)
    program.unlink()
    assert done.returncode == 1
    assert 'Argument 1 to "get" of "KeyValueStore" has incompatible type "int"; expected "str"' in done.stdout
    assert (
        'Argument 1 to "get" of "SyncKeyValueStore" has incompatible type "int"; expected "str"'
        in done.stdout
    )


def test_mypy_catches_a_wrong_finder_value_and_a_ttl_without_the_option(generated: Path) -> None:
    program = generated / "wrong_finders.py"
    program.write_text(WRONG_FINDERS)
    done = mypy(program, cwd=generated)
    program.unlink()
    assert done.returncode == 1
    assert 'Argument 1 to "find_by_tier" of "UserProfileStore" has incompatible type "str"' in done.stdout
    assert 'Unexpected keyword argument "ttl" for "put" of "_Store"' in done.stdout


def test_runtime_and_compiler_pass_mypy_strict() -> None:
    done = mypy_modules("prism_runtime", "protoc_gen_prism", "prism", cwd=ROOT)
    assert done.returncode == 0, done.stdout


def test_generated_clients_are_formatted(generated: Path) -> None:
    clients = sorted(str(p) for p in generated.rglob("*_prism.py"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "--no-cache",
            "--isolated",
            "--line-length",
            "110",
            *clients,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
