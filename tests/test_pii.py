"""PII handling, proven against real storage: raw bytes, audit chain, forget, blind indexes, rotation, masking.

Every test goes through freshly generated stores on a real SQLite file and reads the raw storage back with
the plain driver (and the SQLite file's bytes), as an attacker with the database would. BACKENDS lists
where the same tests run.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hmac
import importlib
import io
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import asyncpg
import pytest
from backends import BACKENDS, drop_schema, new_schema, url_for, with_query
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from styles import STYLES, Twins, styled

import prism_runtime
import prism_stack as stack
from prism_runtime.errors import Contention
from prism_runtime.pii import LocalKeyWrapper, crypto, keyring, mask_value
from prism_runtime.pii.errors import AuditTampered
from prism_runtime.pii.vault import vault_for
from prism_runtime.pii.wrappers import _context_bytes
from prism_runtime.sql.names import EVENT_ID_COLUMN
from prism_runtime.timeseries import event_id
from protoc_gen_prism.protoc_runner import tool
from protoc_gen_prism.sql.provision import provision

SSN, EMAIL, PHONE = "078-05-1120", "Jane.Roe@example.com", "+1 415 555 0134"
PATIENT_NS, VISIT_NS = "prismtest_pii_v1_patient", "prismtest_pii_v1_visit"


@pytest.fixture(params=STYLES)
def pii(request: pytest.FixtureRequest, generated: Path) -> Iterator[tuple[ModuleType, Any]]:
    """The generated module as each client style uses it (tests/styles.py): one suite proves both."""
    twins = Twins()
    yield (
        importlib.import_module("prismtest.pii.v1.pii_pb2"),
        styled(importlib.import_module("prismtest.pii.v1.pii_prism"), request.param, twins),
    )
    twins.close()


@pytest.fixture(params=BACKENDS)
async def url(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """An empty database with the generated SQL provisioned, as a user sets one up."""
    # The CLI subprocesses find the same master key through the environment.
    monkeypatch.setenv("PRISM_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    address = await url_for(request, request.param, tmp_path)
    async with prism_runtime.connect(address) as handle:
        await provision(handle, generated, echo=lambda line: None)
    yield address
    if request.param == "postgres":
        await drop_schema(address)


@pytest.fixture
async def db(url: str, tmp_path: Path) -> AsyncIterator[prism_runtime.Database]:
    async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as handle:
        yield handle


async def raw(url: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read (or change) the stored tables directly with the plain driver, bypassing Prism ("?" markers)."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    count = iter(range(1, 1000))
    pg = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await pg.fetch(re.sub(r"\?", lambda _: f"${next(count)}", sql), *args)]
    finally:
        await pg.close()


def drop_guard(url: str, action: str) -> str:
    """Return the SQL that drops the append-only guard of prism_audit for UPDATE or DELETE."""
    if url.startswith("sqlite:"):
        return f"DROP TRIGGER prism_audit__no_{action.lower()}"
    return "DROP TRIGGER prism_audit__no_change ON prism_audit"


def prism_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """Run the `prism` command as a user would."""
    return subprocess.run(
        [tool("prism"), *args, "--url", url], capture_output=True, text=True, check=False, timeout=120
    )


def patient(pb2: Any, pid: str = "p1", **over: Any) -> Any:
    fields: dict[str, Any] = dict(
        patient_id=pid,
        ssn=SSN,
        email=EMAIL,
        phone=PHONE,
        photo=b"\x89PNG-face",
        display_name="J. R.",
        last_ip="203.0.113.77",
        visits=3,
    )
    fields.update(over)
    message = pb2.Patient(**fields)
    message.emergency.name = "John Roe"
    message.emergency.phone = "+44 20 7946 0958"
    return message


# -- encryption at rest ----------------------------------------------------------------------------


async def test_put_encrypts_get_decrypts_in_tinks_layout(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    pb2, prism = pii
    store = prism.PatientStore(db)
    original = patient(pb2)
    await store.put(original)
    assert await store.get("p1") == original
    (ssn, email, phone, photo, name, bidx) = (
        await raw(url, f"SELECT ssn, email, phone, photo, display_name, email__bidx FROM {PATIENT_NS}")
    )[0]
    for blob, clear in ((ssn, SSN), (email, EMAIL), (phone, PHONE)):
        assert isinstance(blob, bytes) and blob[0] == 0x01
        assert len(blob) == 1 + 4 + 12 + len(clear.encode()) + 16
        assert clear.encode() not in blob
    assert {ssn[1:5], email[1:5], phone[1:5], photo[1:5]} == {ssn[1:5]}, "one data key per subject"
    assert name == "J. R." and len(bidx) == 2
    # A second subject gets a key of its own.
    await store.put(patient(pb2, "p2"))
    other = (await raw(url, f"SELECT ssn FROM {PATIENT_NS} WHERE patient_id = 'p2'"))[0][0]
    assert other[1:5] != ssn[1:5]


async def test_empty_and_unset_values_round_trip(db: prism_runtime.Database, pii: Any) -> None:
    pb2, prism = pii
    store = prism.PatientStore(db)
    bare = pb2.Patient(patient_id="p0")
    await store.put(bare)
    got = await store.get("p0")
    assert got == bare and not got.HasField("phone")
    await store.put_many([patient(pb2, f"p{i}") for i in range(1, 40)])
    assert [p.ssn for p in await store.get_many(["p3", "p0"])] == [SSN, ""]
    assert len([p async for p in store.scan(page_size=7)]) == 40


async def test_batches_mixing_set_empty_and_bare_rows_round_trip(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    """The row sealer's batch paths: rows whose first encrypted field is empty, rows with nothing to
    encrypt, repeated subjects, and rows under keys of two generations, in one batch each way."""
    pb2, prism = pii
    store = prism.PatientStore(db)
    items = [
        patient(pb2, "m1"),
        patient(pb2, "m2", ssn=""),  # the first encrypted field empty, the others set
        pb2.Patient(patient_id="m3"),  # nothing to encrypt: no key is made for m3
        patient(pb2, "m4", ssn="", email="", photo=b""),
        patient(pb2, "m1", ssn="219-09-9999"),  # the same subject again: the last write wins
    ]
    await store.put_many(items)
    got = await store.get_many(["m1", "m2", "m3", "m4", "m1", "nobody"])
    assert [(p.ssn, p.email, p.phone) if p else None for p in got] == [
        ("219-09-9999", EMAIL, PHONE),
        ("", EMAIL, PHONE),
        ("", "", ""),
        ("", "", PHONE),
        ("219-09-9999", EMAIL, PHONE),
        None,
    ]
    vault = prism.vault(db)
    made = "SELECT COUNT(*) FROM prism_keys WHERE subject_ref = ?"
    assert await raw(url, made, (vault.keyring.subject_ref("m3"),)) == [(0,)]
    assert await raw(url, made, (vault.keyring.subject_ref("m4"),)) == [(1,)]
    await vault.keyring.set_meta("generation", vault.keyring.generation + 1)
    await store.put(patient(pb2, "m2"))  # now under the new generation's key; m1 stays under the old
    assert [p.ssn for p in await store.get_many(["m1", "m2"])] == ["219-09-9999", SSN]


def test_no_plaintext_pii_in_the_database_file(pii: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    pb2, prism = pii
    text = st.text(
        alphabet=st.characters(codec="utf-8", categories=["L", "N", "P"]), min_size=4, max_size=40
    ).map(lambda s: "\u2603" + s)  # a mark no schema name or number has, so a match is a leak, not chance

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ssn=text, email=text, phone=text, notes=text)
    def check(ssn: str, email: str, phone: str, notes: str) -> None:
        folder = tmp_path_factory.mktemp("raw")
        path = folder / "pii.db"

        async def write() -> None:
            wrapper = LocalKeyWrapper(folder / "master.key")
            async with prism_runtime.connect(f"sqlite:///{path}", key_wrapper=wrapper) as handle:
                await prism.PatientStore(handle).put(
                    pb2.Patient(patient_id="p1", ssn=ssn, email=email, phone=phone)
                )
                await prism.VisitStore(handle).put(
                    pb2.Visit(clinic="c1", seq=1, patient_id="p1", notes=notes)
                )
                got = await prism.PatientStore(handle).get("p1")
                assert (got.ssn, got.email, got.phone) == (ssn, email, phone)

        asyncio.run(write())
        stored = b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("pii.db"))
        for value in (ssn, email, phone, notes):
            assert value.encode("utf-8") not in stored

    check()


async def test_no_plaintext_pii_in_any_table(db: prism_runtime.Database, url: str, pii: Any) -> None:
    pb2, prism = pii
    with prism_runtime.actor("svc-intake", purpose="admission"):
        await prism.PatientStore(db).put(patient(pb2, "p1"))
        await prism.VisitStore(db).put(pb2.Visit(clinic="north", seq=1, patient_id="p1", notes="influenza A"))
        await prism.PatientStore(db).find_by_email(EMAIL)
    if url.startswith("sqlite:"):
        tables = [r[0] for r in await raw(url, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        tables = [
            r[0]
            for r in await raw(
                url, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        ]
    assert {"prism_keys", "prism_audit", "prism_entities", PATIENT_NS, VISIT_NS} <= set(tables)
    stored = b""
    for table in tables:
        for row in await raw(url, f'SELECT * FROM "{table}"'):
            stored += b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    for value in (SSN, EMAIL, PHONE, "influenza A", "PNG-face"):
        assert value.encode() not in stored
    assert b"J. R." in stored, "fields without encrypt_at_rest stay queryable as before"


async def test_pg_dump_holds_no_plaintext_pii(
    postgres_dsn: str, generated: Path, pii: Any, tmp_path: Path
) -> None:
    """What a backup holds: every table, comment and trigger of the schema, as pg_dump writes them."""
    pb2, prism = pii
    url = await new_schema(postgres_dsn)
    try:
        async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as db:
            await provision(db, generated, echo=lambda line: None)
            with prism_runtime.actor("svc-intake", purpose="admission"):
                await prism.PatientStore(db).put(patient(pb2, "p1"))
                await prism.VisitStore(db).put(
                    pb2.Visit(clinic="north", seq=1, patient_id="p1", notes="influenza A")
                )
                await prism.SignInSeries(db).append(
                    pb2.SignIn(patient_id="p1", at_ms=1_700_000_000_000, ip="198.51.100.200", device="phone")
                )
        address, schema = url.split("?", 1)[0], url.rsplit("search_path=", 1)[1]
        dump = subprocess.run(
            [str(stack.postgres_tool("pg_dump")), "--dbname", address, "--schema", schema],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    finally:
        await drop_schema(url)
    assert f"CREATE TABLE {schema}.{PATIENT_NS}".encode() in dump and b"COPY" in dump
    # Fields without encrypt_at_rest are in the dump as they are (last_ip is PII kept clear on purpose).
    assert b"J. R." in dump and b"203.0.113.77" in dump
    for value in (SSN, EMAIL, PHONE, "influenza A", "PNG-face", "198.51.100.200"):
        # bytea columns are dumped as hex: a clear value stored there would show in that form.
        assert value.encode() not in dump and value.encode().hex().encode() not in dump, value


async def test_ciphertext_swapped_between_rows_does_not_decrypt(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    pb2, prism = pii
    store = prism.PatientStore(db)
    await store.put_many([patient(pb2, "p1"), patient(pb2, "p2", ssn="219-09-9999")])
    (p1_ssn,) = (await raw(url, f"SELECT ssn FROM {PATIENT_NS} WHERE patient_id = 'p1'"))[0]
    await raw(url, f"UPDATE {PATIENT_NS} SET ssn = ? WHERE patient_id = 'p2'", (p1_ssn,))
    with pytest.raises(prism_runtime.DecryptionError) as caught:
        await store.get("p2")
    message = str(caught.value)
    assert PATIENT_NS in message and "'ssn'" in message
    assert SSN not in message and "219-09-9999" not in message and "p2" not in message
    # Same row, other field: the field number is bound too.
    await raw(url, f"UPDATE {PATIENT_NS} SET email = ? WHERE patient_id = 'p1'", (p1_ssn,))
    with pytest.raises(prism_runtime.DecryptionError, match="'email'"):
        await store.get("p1")


# -- forget ----------------------------------------------------------------------------------------


async def test_forget_shreds_keys_deletes_rows_and_leaves_nothing_readable(
    db: prism_runtime.Database, url: str, pii: Any, tmp_path: Path
) -> None:
    pb2, prism = pii
    patients, visits = prism.PatientStore(db), prism.VisitStore(db)
    await patients.put_many([patient(pb2, "p1"), patient(pb2, "p2")])
    await visits.put_many(
        [pb2.Visit(clinic="c1", seq=i, patient_id=f"p{1 + i % 2}", notes=f"note {i}") for i in range(6)]
    )
    backup = (await raw(url, f"SELECT * FROM {PATIENT_NS} WHERE patient_id = 'p1'"))[0]

    receipt = await prism.forget(db, "p1")

    assert receipt.keys_destroyed == 1 and "p1" not in receipt.subject_ref
    assert {(e.namespace, e.rows_deleted) for e in receipt.erasures} == {(PATIENT_NS, 1), (VISIT_NS, 3)}
    assert await patients.get("p1") is None
    assert [v.seq async for v in visits.scan("c1")] == [1, 3, 5]
    assert (await patients.get("p2")).ssn == SSN
    # The raw ciphertext survives in a backup; restored, it still does not open, on a fresh connection too.
    await raw(url, f"INSERT INTO {PATIENT_NS} VALUES ({', '.join('?' * len(backup))})", backup)
    with pytest.raises(prism_runtime.SubjectForgotten, match=PATIENT_NS):
        await patients.get("p1")
    assert [p.patient_id async for p in patients.scan()] == ["p2"], "scans skip forgotten subjects"
    async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as fresh:
        with pytest.raises(prism_runtime.SubjectForgotten):
            await prism.PatientStore(fresh).get("p1")
    assert await raw(
        url, "SELECT wrapped, state FROM prism_keys WHERE subject_ref = ?", (receipt.subject_ref,)
    ) == [(None, "forgotten")]


async def test_prism_forget_command_prints_a_receipt_without_the_subject(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    pb2, prism = pii
    await prism.PatientStore(db).put(patient(pb2, "jane-roe-1980"))
    done = prism_cli("forget", "jane-roe-1980", url=url)
    assert done.returncode == 0, done.stderr
    assert "jane-roe-1980" not in done.stdout
    assert f"{PATIENT_NS} (prismtest.pii.v1.Patient): 1 row(s) deleted" in done.stdout
    assert "keys destroyed: 1" in done.stdout


USER_EVENT_NS, SUBSCRIPTION_NS = "prismtest_pii_v1_user_event", "prismtest_pii_v1_subscription"
CHAT_NS = "prismtest_pii_v1_chat_line"


async def test_forget_erases_plaintext_pii_and_its_receipt_lists_every_table(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    """PII in clear (no encrypt_at_rest) is catalogued and deleted too; the receipt names every table."""
    pb2, prism = pii
    events = prism.UserEventSeries(db)
    await events.append_many(
        pb2.UserEvent(
            user_id=uid, at_ms=1_700_000_000_000 + i, email=f"{uid}.mail@example.org", page=f"/p{i}"
        )
        for uid in ("u1", "u2")
        for i in range(3)
    )
    subscriptions = prism.SubscriptionStore(db)
    await subscriptions.put(pb2.Subscription(account_id=7, email="seven@example.org", weekly=True))
    await prism.PatientStore(db).put(patient(pb2, "u1"))
    catalogued = {r[0] for r in await raw(url, "SELECT namespace FROM prism_entities")}
    assert catalogued == {USER_EVENT_NS, SUBSCRIPTION_NS, PATIENT_NS}, "clear and encrypted pii alike"

    receipt = await prism.forget(db, "u1")

    # The integer-keyed table is visited too: "u1" names no row there (and is no error on Postgres).
    assert {(e.namespace, e.rows_deleted) for e in receipt.erasures} == {
        (USER_EVENT_NS, 3),
        (SUBSCRIPTION_NS, 0),
        (PATIENT_NS, 1),
    }
    assert receipt.kept == ()
    lines = receipt.lines()
    assert f"  {USER_EVENT_NS} (prismtest.pii.v1.UserEvent): 3 row(s) deleted" in lines
    assert f"  {SUBSCRIPTION_NS} (prismtest.pii.v1.Subscription): 0 row(s) deleted" in lines
    assert f"  {PATIENT_NS} (prismtest.pii.v1.Patient): 1 row(s) deleted, blind indexes with them" in lines
    assert await raw(url, f"SELECT DISTINCT user_id, email FROM {USER_EVENT_NS}") == [
        ("u2", "u2.mail@example.org")
    ]
    assert [e async for e in events.query("u1")] == []
    assert [e.page async for e in events.query("u2")] == ["/p0", "/p1", "/p2"]
    if url.startswith("sqlite:"):
        # Not only unreachable by SQL: the deleted values are gone from the database file and its WAL.
        path = Path(url.removeprefix("sqlite:///"))
        stored = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        assert b"u1.mail@example.org" not in stored and b"u2.mail@example.org" in stored

    by_number = await prism.forget(db, 7)
    assert {(e.namespace, e.rows_deleted) for e in by_number.erasures} == {
        (USER_EVENT_NS, 0),
        (SUBSCRIPTION_NS, 1),
        (PATIENT_NS, 0),
    }
    assert await subscriptions.get(7) is None

    done = prism_cli("forget", "u2", url=url)
    assert done.returncode == 0, done.stderr
    assert f"  {USER_EVENT_NS} (prismtest.pii.v1.UserEvent): 3 row(s) deleted" in done.stdout
    assert f"  {SUBSCRIPTION_NS} (prismtest.pii.v1.Subscription): 0 row(s) deleted" in done.stdout
    assert "u2" not in done.stdout
    assert await raw(url, f"SELECT count(*) FROM {USER_EVENT_NS}") == [(0,)]


def test_catalog_entries_round_trip_and_tolerate_other_versions(pii: Any) -> None:
    from prism_runtime.pii.catalog import entry_from_json, spec_to_json
    from prism_runtime.schema import registered

    spec = registered()[CHAT_NS]  # the generated module registered it on import (the pii fixture)
    entry = entry_from_json(spec_to_json(spec, "nats"))
    assert (entry.stored_on, entry.spec.column("nickname").plaintext_reason) == (
        "nats",
        "shown to everyone in the room",
    )
    written = json.loads(spec_to_json(spec))
    # Written before streams were catalogued (no kind), or by a newer Prism (a column attribute unknown here).
    written["columns"][0]["shredded_by"] = "a later version"
    older = entry_from_json(json.dumps(written))
    assert older.stored_on == "" and older.spec.columns == spec.columns


# -- searchable ------------------------------------------------------------------------------------


async def test_find_by_blind_index(db: prism_runtime.Database, url: str, pii: Any) -> None:
    pb2, prism = pii
    store = prism.PatientStore(db)
    await store.put_many(
        [patient(pb2, f"p{i}", email=f"user{i}@example.com") for i in range(300)] + [patient(pb2, "px")]
    )
    assert [p.patient_id for p in await store.find_by_email("USER42@example.com ")] == ["p42"]
    assert {p.patient_id for p in await store.find_by_email(EMAIL)} == {"px"}
    assert await store.find_by_email("nobody@example.com") == []
    indexes = {r[0] for r in await raw(url, f"SELECT email__bidx FROM {PATIENT_NS}")}
    assert all(len(i) == 2 for i in indexes)
    await prism.forget(db, "px")
    assert await store.find_by_email(EMAIL) == []


# -- audit -----------------------------------------------------------------------------------------


async def test_audit_records_who_touched_what_and_verify_finds_tampering(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    pb2, prism = pii
    store = prism.PatientStore(db)
    with prism_runtime.actor("svc-billing", purpose="invoice"):
        await store.put(patient(pb2, "p1"))
        await store.get("p1")
    await prism.VisitStore(db).put(
        pb2.Visit(clinic="clinic-north", seq=1, patient_id="p1", notes="influenza")
    )
    rows = await raw(
        url, "SELECT seq, actor, purpose, action, message, field, pii, outcome, key_id FROM prism_audit"
    )
    assert [r[:8] for r in rows] == [
        (1, "svc-billing", "invoice", "write", "prismtest.pii.v1.Patient", 2, "ssn", "ok"),
        (2, "svc-billing", "invoice", "decrypt", "prismtest.pii.v1.Patient", 2, "ssn", "ok"),
        (3, "unattributed", "", "write", "prismtest.pii.v1.Visit", 4, "generic", "ok"),
    ]
    assert rows[0][8] != 0
    dump = "\n".join(map(str, await raw(url, "SELECT * FROM prism_audit")))
    for value in (SSN, EMAIL, "p1", "influenza", "clinic-north"):
        assert value not in dump

    ok = prism_cli("audit", "verify", url=url)
    assert ok.returncode == 0 and "ok, 3 entries" in ok.stdout
    with pytest.raises(Exception, match="append-only"):
        await raw(url, "UPDATE prism_audit SET actor = 'nobody' WHERE seq = 2")
    # Someone with the file can drop the guard; the chain still gives them away.
    await raw(url, drop_guard(url, "UPDATE"))
    await raw(url, "UPDATE prism_audit SET actor = 'nobody' WHERE seq = 2")
    bad = prism_cli("audit", "verify", url=url)
    assert bad.returncode == 1
    assert "TAMPERED at entry 2: entry_hash does not match" in bad.stdout

    exported = prism_cli("audit", "export", "--after-seq", "1", url=url)
    lines = exported.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith('{"checkpoint": {"seq": 3, "entry_hash": ')


async def test_a_write_and_its_audit_entries_are_stored_together_or_not_at_all(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    pb2, prism = pii
    store, series = prism.PatientStore(db), prism.SignInSeries(db)
    await store.put(patient(pb2, "p1"))
    await series.append(pb2.SignIn(patient_id="p1", at_ms=1_700_000_000_000, ip="192.0.2.1"))
    entries = await raw(url, "SELECT COUNT(*) FROM prism_audit")
    # The audit log refuses every entry from now on: no audited write may land without its entries.
    if url.startswith("sqlite:"):
        await raw(
            url,
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON prism_audit BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
    else:
        await raw(
            url,
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
        )
        await raw(
            url,
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON prism_audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        )
    with pytest.raises(prism_runtime.BackendError):
        await store.put(patient(pb2, "p2"))
    with pytest.raises(prism_runtime.BackendError):
        await store.put_many([patient(pb2, f"p{i}") for i in range(3, 300)])
    with pytest.raises(prism_runtime.BackendError):
        await series.append(pb2.SignIn(patient_id="p1", at_ms=1_700_000_000_001, ip="192.0.2.2"))
    assert await raw(url, f"SELECT patient_id FROM {PATIENT_NS}") == [("p1",)]
    assert await raw(url, f"SELECT COUNT(*) FROM {SIGNIN_NS}") == [(1,)]
    assert await raw(url, "SELECT COUNT(*) FROM prism_audit") == entries
    await raw(url, "DROP TRIGGER refuse_audit" + ("" if url.startswith("sqlite:") else " ON prism_audit"))
    await store.put(patient(pb2, "p2"))
    assert (await store.get("p2")).ssn == SSN
    assert (await db_audit(db)).ok


async def test_writers_on_two_connections_keep_one_audit_chain(url: str, pii: Any, tmp_path: Path) -> None:
    """Two handles (as two processes) write at once: each append reads the head under the chain's lock, so
    every write lands once with its entries and the chain holds."""
    pb2, prism = pii
    wrapper = LocalKeyWrapper(tmp_path / "master.key")
    async with (
        prism_runtime.connect(url, key_wrapper=wrapper) as one,
        prism_runtime.connect(url, key_wrapper=wrapper) as two,
    ):
        await prism.PatientStore(one).put(patient(pb2, "warm-1"))
        await prism.PatientStore(two).put(patient(pb2, "warm-2"))  # both heads cached now

        async def writes(db: prism_runtime.Database, name: str) -> None:
            store = prism.PatientStore(db)
            for i in range(6):
                await store.put_many([patient(pb2, f"{name}-{i}-{j}") for j in range(3)])

        await asyncio.gather(writes(one, "a"), writes(two, "b"))
        assert (await db_audit(one)).ok
    # One write entry per audited field (ssn) per row: 2 warm-up rows and 2 x 6 x 3 rows.
    assert await raw(url, "SELECT COUNT(*) FROM prism_audit WHERE action = 'write'") == [(38,)]
    assert len(await raw(url, f"SELECT patient_id FROM {PATIENT_NS}")) == 38


WRITER = Path(__file__).with_name("audit_writer.py")


@pytest.mark.parametrize("processes", [2, 4])
async def test_audited_writers_in_separate_processes_lose_no_write(
    db: prism_runtime.Database, url: str, pii: Any, generated: Path, tmp_path: Path, processes: int
) -> None:
    """Separate OS processes put audited rows on one database at once: every write lands, the chain holds.

    Each append reads the chain's head inside its write transaction, under the write lock, so no two
    writers can build on the same head; before, one in sixteen put_many calls failed on `seq`."""
    pb2, prism = pii
    await prism.PatientStore(db).put(patient(pb2, "warm"))  # the master key, index root and tables exist
    calls, batch = 100, 4
    env = {**os.environ, "PRISM_MASTER_KEY_FILE": str(tmp_path / "master.key")}
    command = [sys.executable, str(WRITER), url, str(generated)]
    procs: list[subprocess.Popen[str]] = []
    try:
        for n in range(processes):  # one by one: concurrent first-use setup is not what this test is about
            proc = subprocess.Popen(
                [*command, f"w{n}", str(calls), str(batch)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            procs.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.communicate(timeout=120)[0].strip().splitlines()[-1]) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [(r["ok"], r["failed"]) for r in results] == [(calls, 0)] * processes, results
    assert (await db_audit(db)).ok
    rows = 1 + processes * (calls // 2 * batch + calls // 2)
    assert await raw(url, "SELECT COUNT(*) FROM prism_audit WHERE action = 'write'") == [(rows,)]
    assert await raw(url, "SELECT MAX(seq), COUNT(*) FROM prism_audit") == [(rows, rows)]
    assert await raw(url, f"SELECT COUNT(*) FROM {PATIENT_NS}") == [(rows,)]


async def test_an_audited_write_that_cannot_get_the_chain_lock_fails_typed_after_bounded_retries(
    postgres_dsn: str, generated: Path, pii: Any, tmp_path: Path
) -> None:
    """Lock waits that time out are Contention, tried again a bounded number of times, then raised; the
    write stores nothing, and goes through once the lock is free."""
    pb2, prism = pii
    # asyncpg passes unknown URL parameters to the server as settings: each lock wait gives up after 100 ms.
    url = with_query(await new_schema(postgres_dsn), lock_timeout="100")
    try:
        wrapper = LocalKeyWrapper(tmp_path / "master.key")
        async with prism_runtime.connect(url, key_wrapper=wrapper) as db:
            await provision(db, generated, echo=lambda line: None)
            store = prism.PatientStore(db)
            await store.put(patient(pb2, "p0"))
            holder = await asyncpg.connect(url)
            try:
                async with holder.transaction():
                    await holder.execute("LOCK TABLE prism_audit IN SHARE ROW EXCLUSIVE MODE")
                    with pytest.raises(Contention, match="SQLSTATE 55P03"):
                        await store.put(patient(pb2, "p1"))
            finally:
                await holder.close()
            assert await raw(url, f"SELECT patient_id FROM {PATIENT_NS}") == [("p0",)]
            await store.put(patient(pb2, "p1"))
            assert (await db_audit(db)).entries == 2
    finally:
        await drop_schema(url)


async def db_audit(db: prism_runtime.Database) -> Any:
    """Return the result of walking the audit chain of `db`'s SQL backend."""
    return await vault_for(db.backend).audit.verify()


async def test_audit_names_a_deleted_entry(db: prism_runtime.Database, url: str, pii: Any) -> None:
    pb2, prism = pii
    store = prism.PatientStore(db)
    for i in range(4):
        await store.put(patient(pb2, f"p{i}"))
    await raw(url, drop_guard(url, "DELETE"))
    await raw(url, "DELETE FROM prism_audit WHERE seq = 3")
    result = await vault_for(db.backend).audit.verify()  # type: ignore[arg-type]
    assert (result.first_bad_seq, result.reason) == (3, "entry 3 is missing (next is 4)")


async def test_audit_finds_entries_cut_off_the_end(db: prism_runtime.Database, url: str, pii: Any) -> None:
    """Deleting the newest entries leaves a chain that holds; the signed head checkpoint gives it away."""
    pb2, prism = pii
    store = prism.PatientStore(db)
    for i in range(4):
        await store.put(patient(pb2, f"p{i}"))
    assert (
        prism_cli("audit", "verify", url=url).stdout.strip()
        == "prism audit verify: ok, 4 entries chain correctly"
    )
    await raw(url, drop_guard(url, "DELETE"))
    await raw(url, "DELETE FROM prism_audit WHERE seq >= 3")
    result = await db_audit(db)
    assert (result.first_bad_seq, result.reason) == (
        3,
        "the chain ends at entry 2 but its authenticated head is seq 4: entries 3..4 were removed",
    )
    bad = prism_cli("audit", "verify", url=url)
    assert bad.returncode == 1
    assert "TAMPERED at entry 3: the chain ends at entry 2 but its authenticated head is seq 4" in bad.stdout
    # Later writes chain on from the signed head, so the cut stays a gap that verify keeps naming.
    await store.put(patient(pb2, "p9"))
    assert await raw(url, "SELECT MAX(seq) FROM prism_audit") == [(5,)]
    assert (await db_audit(db)).reason == "entry 3 is missing (next is 5)"


async def test_audit_head_checkpoint_cannot_be_forged_or_rolled_back_unseen(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    """Who can write the tables but not unwrap the index root key cannot make a checkpoint that verifies;
    an older genuine one put back is found (unless the chain is cut to match: then an exported one is)."""
    pb2, prism = pii
    store = prism.PatientStore(db)
    head = "SELECT value FROM prism_meta WHERE name = 'audit_head'"
    set_head = "UPDATE prism_meta SET value = ? WHERE name = 'audit_head'"
    for i in range(2):
        await store.put(patient(pb2, f"p{i}"))
    [(older,)] = await raw(url, head)
    assert older.startswith("2:")
    for i in range(2, 4):
        await store.put(patient(pb2, f"p{i}"))
    exported = json.loads(prism_cli("audit", "export", url=url).stdout.strip().splitlines()[-1])["checkpoint"]
    kept = f"{exported['seq']}:{exported['entry_hash']}"
    patients = await raw(url, f"SELECT COUNT(*) FROM {PATIENT_NS}")

    # An older genuine checkpoint put back over a longer chain.
    await raw(url, set_head, (older,))
    result = await db_audit(db)
    assert (result.first_bad_seq, result.reason) == (
        3,
        "entries 3..4 are past the authenticated head (seq 2): the checkpoint was rolled back, "
        "or they were written around Prism",
    )
    with pytest.raises(AuditTampered, match="past the authenticated head"):
        await store.put(patient(pb2, "p8"))

    # Both put back to a consistent older state: only a checkpoint kept elsewhere shows it.
    await raw(url, drop_guard(url, "DELETE"))
    await raw(url, "DELETE FROM prism_audit WHERE seq >= 3")
    assert (await db_audit(db)).ok
    cut = prism_cli("audit", "verify", "--checkpoint", kept, url=url)
    assert cut.returncode == 1
    assert "TAMPERED at entry 3: the chain ends at entry 2, before the checkpoint given (seq 4)" in cut.stdout

    # A checkpoint made without the key: the right seq and hash, a MAC that is not.
    seq, entry_hash, mac = older.split(":")
    await raw(url, set_head, (f"{seq}:{entry_hash}:{'0' * len(mac)}",))
    assert (await db_audit(db)).reason == "the head checkpoint does not authenticate (forged or replaced)"
    with pytest.raises(AuditTampered, match="does not authenticate"):
        await store.put(patient(pb2, "p8"))

    # No checkpoint at all: nothing is appended until an operator verifies the chain and signs its head.
    await raw(url, "DELETE FROM prism_meta WHERE name = 'audit_head'")
    assert (await db_audit(db)).first_bad_seq == 3
    with pytest.raises(AuditTampered, match="no head checkpoint"):
        await store.put(patient(pb2, "p8"))
    assert await raw(url, f"SELECT COUNT(*) FROM {PATIENT_NS}") == patients  # refused writes stored nothing
    signed = prism_cli("audit", "checkpoint", url=url)
    assert signed.stdout.strip() == "prism audit checkpoint: signed the head of 2 entries", signed.stderr
    assert prism_cli("audit", "checkpoint", url=url).returncode == 1  # once only
    await store.put(patient(pb2, "p8"))
    assert (await db_audit(db)).entries == 3 and (await db_audit(db)).ok


# -- rotation --------------------------------------------------------------------------------------


async def test_rotate_reencrypt_retire(
    db: prism_runtime.Database, url: str, pii: Any, tmp_path: Path
) -> None:
    pb2, prism = pii
    store = prism.PatientStore(db)
    await store.put(patient(pb2, "p1"))
    old_id = (await raw(url, f"SELECT ssn FROM {PATIENT_NS}"))[0][0][1:5]

    rotated = prism_cli("keys", "rotate", url=url)
    assert rotated.returncode == 0, rotated.stderr
    assert "generation 2 is primary" in rotated.stdout and "master key version 2" in rotated.stdout

    async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as fresh:
        store = prism.PatientStore(fresh)
        assert (await store.get("p1")).ssn == SSN, "old data still decrypts"
        await store.put(patient(pb2, "p2"))
    refused = prism_cli("keys", "retire", "--below", "2", url=url)
    assert refused.returncode == 1 and "run `prism keys reencrypt` first" in refused.stderr

    swept = prism_cli("keys", "reencrypt", url=url)
    assert swept.returncode == 0, swept.stderr
    assert "8 encrypted value(s), moved 4, re-wrapped 2 key(s)" in swept.stdout
    assert (await raw(url, f"SELECT ssn FROM {PATIENT_NS} WHERE patient_id = 'p1'"))[0][0][1:5] != old_id

    retired = prism_cli("keys", "retire", "--below", "2", url=url)
    assert retired.returncode == 0 and "1 data key(s) below generation 2 destroyed" in retired.stdout
    async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as fresh:
        assert [p.ssn for p in await prism.PatientStore(fresh).get_many(["p1", "p2"])] == [SSN, SSN]


async def test_pseudonyms_are_the_hmac_of_the_canonical_subject(db: prism_runtime.Database, pii: Any) -> None:
    """subject_ref and record_ref are HMAC-SHA256 under the derived pseudonym key of canonical() bytes,
    truncated to 16 bytes of hex: stored key rows, audit records and receipts name subjects by them."""
    pb2, prism = pii
    await prism.PatientStore(db).put(patient(pb2, "p0"))
    ring = prism.vault(db).keyring  # type: ignore[arg-type]
    key = ring.derive(b"prism subject pseudonym")
    for subject in ("p0", "", "Zoë", 42, b"\x00raw", None, True):
        expected = "s_" + hmac.digest(key, crypto.canonical((subject,)), "sha256").hex()[:32]
        assert ring.subject_ref(subject) == expected
        assert ring.subject_ref(subject) == expected  # and again, from the cache
    for record_key in (("p0",), ("p0", 7), ()):
        expected = "r_" + hmac.digest(key, b"record" + crypto.canonical(record_key), "sha256").hex()[:32]
        assert ring.record_ref(record_key) == expected


async def test_a_key_whose_insert_failed_is_never_used(
    db: prism_runtime.Database, url: str, pii: Any, tmp_path: Path
) -> None:
    """New keys are cached only once stored: else a later put would encrypt under a key no table holds."""
    pb2, prism = pii
    store = prism.PatientStore(db)
    await store.put(patient(pb2, "p0"))  # tables and index root made
    driver = prism.vault(db).keyring.driver  # type: ignore[arg-type]
    real = driver.execute_many

    async def failing(sql: str, rows: Any, *, namespace: str) -> None:
        if namespace == "prism_keys":
            raise RuntimeError("the database went away")
        await real(sql, rows, namespace=namespace)

    driver.execute_many = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await store.put_many([patient(pb2, "p1"), patient(pb2, "p2")])
    driver.execute_many = real  # type: ignore[method-assign]
    await store.put_many([patient(pb2, "p1"), patient(pb2, "p2")])
    async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as fresh:
        assert [p.ssn for p in await prism.PatientStore(fresh).get_many(["p1", "p2"])] == [SSN, SSN]


def test_master_key_file_is_private(tmp_path: Path) -> None:
    wrapper = LocalKeyWrapper(tmp_path / "keys" / "master.key")
    asyncio.run(wrapper.generate({"prism": "test"}))
    assert (tmp_path / "keys" / "master.key").stat().st_mode & 0o777 == 0o600


def test_batched_key_generation_wraps_like_generate(tmp_path: Path) -> None:
    """generate_many (the keyring's batch path for new subjects) gives distinct keys, each wrapped as
    `wrap` does: it unwraps under its own context only, in the same Tink layout."""
    wrapper = LocalKeyWrapper(tmp_path / "master.key")
    contexts = [{"prism": "data-key", "subject_ref": f"s_{i}", "key_id": f"{i:08x}"} for i in range(50)]
    made = asyncio.run(wrapper.generate_many(contexts))
    assert len({key for key, _ in made}) == 50 and all(len(key) == 32 for key, _ in made)
    assert len({wrapped[5:17] for _, wrapped in made}) == 50  # a fresh nonce per wrapped key
    for context, (key, wrapped) in zip(contexts, made, strict=True):
        assert wrapped[0] == 1 and key not in wrapped
        assert asyncio.run(wrapper.unwrap(wrapped, context)) == key
    with pytest.raises(prism_runtime.pii.KeyWrapperUnavailable):
        asyncio.run(wrapper.unwrap(made[0][1], contexts[1]))


# A data key wrapped by an earlier release under a known master key: its context bytes are on disk (bound
# into every wrapped key's tag), so they may never change, however they come to be computed.
PINNED_REF, PINNED_KEY_ID = "s_0123456789abcdef0123456789abcdef", 0x1A2B3C4D
PINNED_CONTEXT_BYTES = bytes.fromhex(
    "73000000066b65795f69647300000008316132623363346473000000057072"
    "69736d7300000008646174612d6b6579730000000b7375626a6563745f7265"
    "667300000022735f30313233343536373839616263646566303132333435363738396162636465"
    "66"
)
PINNED_WRAPPED = bytes.fromhex(
    "01000000016dd26895fac4524e6e2b14ab988982112662c2bdfb60bfd0dd04545b3a1fa1ba1f51d3f5d412710b3b708a797de0"
    "cf8ae7a59dcd766b3d0d19cdeb4b"
)


def test_key_context_bytes_are_pinned() -> None:
    """The associated data a wrapped key is bound to: sorted names and values, each typed and sized."""
    assert _context_bytes(keyring._context(PINNED_REF, PINNED_KEY_ID)) == PINNED_CONTEXT_BYTES
    assert _context_bytes({"prism": "index-root"}) == bytes.fromhex(
        "7300000005707269736d730000000a696e6465782d726f6f74"
    )
    # Any other context goes the general way: names sorted, UTF-8, empty values kept.
    assert _context_bytes({"zeta": "\u00fc", "alpha": ""}) == bytes.fromhex(
        "7300000005616c706861730000000073000000047a6574617300000002c3bc"
    )


@given(st.text(), st.text(), st.text())
def test_data_key_context_encoding_is_the_generic_one(key_id: str, prism: str, ref: str) -> None:
    """The data-key context's short cut writes what canonical() of the sorted pairs writes, for any text."""
    context = {"subject_ref": ref, "prism": prism, "key_id": key_id}
    generic = crypto.canonical([item for pair in sorted(context.items()) for item in pair])
    assert _context_bytes(context) == generic
    assert _context_bytes(MappingProxyType(context)) == generic


def test_data_key_shaped_context_of_other_types_is_encoded_as_before() -> None:
    """Values that are not plain strings take the generic path: typed as canonical() types them."""
    as_int: Any = {"prism": "data-key", "subject_ref": "s_1", "key_id": 7}
    generic = crypto.canonical(["key_id", 7, "prism", "data-key", "subject_ref", "s_1"])
    assert _context_bytes(as_int) == generic
    with pytest.raises(TypeError):
        _context_bytes({"prism": "data-key", "subject_ref": "s_1", "key_id": 7.0})  # type: ignore[dict-item]


def test_data_key_is_a_frozen_value_with_its_prefix() -> None:
    aead = AESGCM(bytes(32))
    key = keyring.DataKey(0x1A2B3C4D, 2, aead)
    assert (key.key_id, key.version, key.aead, key.prefix) == (0x1A2B3C4D, 2, aead, b"\x01\x1a\x2b\x3c\x4d")
    assert repr(key) == "<DataKey 1a2b3c4d v2>"
    assert key == keyring.DataKey(0x1A2B3C4D, 2, aead) and hash(key) == hash(
        keyring.DataKey(0x1A2B3C4D, 2, aead)
    )
    assert key != keyring.DataKey(0x1A2B3C4D, 3, aead)
    assert dataclasses.replace(key, key_id=5).prefix == b"\x01\x00\x00\x00\x05"
    for name in ("key_id", "prefix", "other"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(key, name, 1)


def test_key_wrapped_by_an_earlier_release_still_unwraps(tmp_path: Path) -> None:
    """A stored wrapped key, made before any change to how contexts are encoded, opens under its context
    and under no other; keys made now open the same way."""
    master = tmp_path / "master.key"
    keyset = {
        "format": "prism-master-keyset/1",
        "primary": 1,
        "keys": {"1": base64.b64encode(bytes(range(32))).decode()},
    }
    master.write_text(json.dumps(keyset))
    wrapper = LocalKeyWrapper(master)
    context = keyring._context(PINNED_REF, PINNED_KEY_ID)
    assert asyncio.run(wrapper.unwrap(PINNED_WRAPPED, context)) == bytes(range(32, 64))
    with pytest.raises(prism_runtime.pii.KeyWrapperUnavailable):
        asyncio.run(wrapper.unwrap(PINNED_WRAPPED, keyring._context(PINNED_REF, PINNED_KEY_ID + 1)))
    [(key, wrapped)] = asyncio.run(wrapper.generate_many([context]))
    assert asyncio.run(wrapper.unwrap(wrapped, dict(context))) == key
    assert asyncio.run(wrapper.unwrap(asyncio.run(wrapper.wrap(key, context)), context)) == key


# -- masking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("ssn", "078-05-1120", "***-**-****"),
        ("email", "jane.roe@example.com", "j***@example.com"),
        ("phone", "+1 415 555 0134", "+1 ******0134"),
        ("phone", "+442079460958", "+44 ******0958"),
        ("phone", "0412 345 678", "******5678"),
        ("credit_card", "4111 1111 1111 1234", "**** **** **** 1234"),
        ("ip", "203.0.113.77", "203.0.113.0"),
        ("ip", "2001:db8:abcd:12:34::1", "2001:db8:abcd::"),
        ("name", "Jane Roe", "[REDACTED]"),
        ("address", "1 Main St", "[REDACTED]"),
        ("dob", "1980-01-02", "[REDACTED]"),
        ("generic", "anything", "[REDACTED]"),
        ("email", "not-an-email", "[REDACTED]"),
    ],
)
def test_mask_formats(kind: str, value: str, masked: str) -> None:
    assert mask_value(kind, value) == masked


def test_logs_reprs_and_exceptions_never_show_pii(pii: Any) -> None:
    pb2, _ = pii
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        prism_runtime.install_log_masking()
        log = logging.getLogger("svc.patients")
        p = patient(pb2)
        log.info("stored %s", p)
        log.info(f"stored {p} and {[p]!r}")
        log.info("by name %(patient)s", {"patient": p})
        log.info(p)
        try:
            raise ValueError(f"cannot bill {p}")
        except ValueError:
            log.exception("billing failed")
        contact = pb2.Contact(name="John Roe", phone="+44 20 7946 0958")
        log.warning("contact %r", contact)
    finally:
        root.removeHandler(handler)
    out = stream.getvalue()
    for value in (SSN, EMAIL, PHONE, "John Roe", "7946 0958", "203.0.113.77", "Jane.Roe"):
        assert value not in out
    assert "***-**-****" in out and "J***@example.com" in out and "203.0.113.0" in out
    assert "+1 ******0134" in out and "[REDACTED]" in out and "J. R." in out


def test_structlog_processor_masks_messages(pii: Any) -> None:
    import structlog

    pb2, _ = pii
    out = io.StringIO()
    structlog.configure(
        processors=[prism_runtime.pii.structlog_processor, structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    try:
        structlog.get_logger().info("stored", patient=pb2.Patient(patient_id="p1", ssn=SSN, email=EMAIL))
    finally:
        structlog.reset_defaults()
    assert SSN not in out.getvalue() and EMAIL not in out.getvalue()
    assert "***-**-****" in out.getvalue()


# -- KMS, for real, against moto's server on loopback -----------------------------------------------


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Any:
    import socket

    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{port}")
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ):
        monkeypatch.setenv(name, value)
    client = boto3.client("kms")
    for _ in range(100):
        try:
            key_id = client.create_key(Description="prism test")["KeyMetadata"]["KeyId"]
            break
        except Exception:
            import time

            time.sleep(0.05)
    else:
        server.kill()
        pytest.fail("moto_server did not start")
    yield key_id, server
    server.kill()
    server.wait()


async def test_kms_wrapper_against_a_real_kms_server(kms: Any, tmp_path: Path, pii: Any) -> None:
    key_id, server = kms
    pb2, prism = pii
    url = f"sqlite:///{tmp_path / 'kms.db'}"
    wrapper = prism_runtime.pii.KmsKeyWrapper(key_id)
    async with prism_runtime.connect(url, key_wrapper=wrapper) as db:
        store = prism.PatientStore(db)
        await store.put(patient(pb2))
        assert (await store.get("p1")).ssn == SSN
    wrapped = await raw(
        url, "SELECT wrapper, length(wrapped) FROM prism_keys WHERE subject_ref <> '~index-root'"
    )
    assert wrapped[0][0] == f"aws-kms {key_id}" and wrapped[0][1] > 32
    stored = (tmp_path / "kms.db").read_bytes()
    assert SSN.encode() not in stored
    async with prism_runtime.connect(url, key_wrapper=prism_runtime.pii.KmsKeyWrapper(key_id)) as db:
        assert (await prism.PatientStore(db).get("p1")).email == EMAIL, "unwrapped through KMS Decrypt"
        server.kill()
        server.wait()
    async with prism_runtime.connect(url, key_wrapper=prism_runtime.pii.KmsKeyWrapper(key_id)) as db:
        with pytest.raises(prism_runtime.pii.KeyWrapperUnavailable, match="aws-kms") as caught:
            await prism.PatientStore(db).get("p1")
        assert SSN not in str(caught.value)


@pytest.mark.parametrize(
    "down", ["sqlite:///{tmp}/missing/dir/x.db", "postgresql://postgres:s3cret@127.0.0.1:1/postgres"]
)
def test_cli_says_in_one_line_when_the_backend_is_down(down: str, tmp_path: Path) -> None:
    done = prism_cli("audit", "verify", url=down.format(tmp=tmp_path))
    assert done.returncode == 1 and done.stderr.startswith("prism audit verify: ")
    assert len(done.stderr.strip().splitlines()) == 1 and "s3cret" not in done.stderr


# -- stream payloads -------------------------------------------------------------------------------


async def test_stream_payload_is_sealed_and_shredded_by_forget(db: prism_runtime.Database, pii: Any) -> None:
    from prism_runtime.pii.payload import open_payload, seal_payload

    pb2, prism = pii
    vault = vault_for(db.backend)  # type: ignore[arg-type]
    spec = prism.PatientStore(db).spec
    original = patient(pb2, "p9")
    payload = await seal_payload(vault, spec, original)
    for value in (SSN, EMAIL, PHONE):
        assert value.encode() not in payload
    assert await open_payload(vault, spec, pb2.Patient, payload) == original
    moved = payload.replace(b"p9", b"p8")  # the same ciphertext under another record key
    with pytest.raises(prism_runtime.DecryptionError, match="'ssn'"):
        await open_payload(vault, spec, pb2.Patient, moved)
    await prism_runtime.forget(db, "p9")
    with pytest.raises(prism_runtime.SubjectForgotten):
        await open_payload(vault, spec, pb2.Patient, payload)


async def test_sealed_payloads_on_real_nats_and_kafka(
    db: prism_runtime.Database, pii: Any, nats_url: str, kafka_bootstrap: str
) -> None:
    """What a stream backend sends: the raw bytes the brokers keep hold no PII, and forget shreds them."""
    import uuid

    import nats
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from prism_runtime.pii.payload import open_payload, seal_payload

    pb2, prism = pii
    vault = vault_for(db.backend)  # type: ignore[arg-type]
    spec = prism.PatientStore(db).spec
    original = patient(pb2, "p-stream")
    payload = await seal_payload(vault, spec, original)
    name = f"pii_{uuid.uuid4().hex[:10]}"

    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    js = nc.jetstream()
    try:
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        ack = await js.publish(f"{name}.patients", payload)
        from_nats = (await js.get_msg(name, ack.seq)).data
    finally:
        await js.delete_stream(name)
        await nc.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(name, payload, key=b"p-stream")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        from_kafka = (await asyncio.wait_for(consumer.getone(), timeout=20)).value
    finally:
        await consumer.stop()

    for stored in (from_nats, from_kafka):
        assert stored is not None
        for value in (SSN, EMAIL, PHONE):
            assert value.encode() not in stored
        assert await open_payload(vault, spec, pb2.Patient, stored) == original
    await prism_runtime.forget(db, "p-stream")
    for stored in (from_nats, from_kafka):
        with pytest.raises(prism_runtime.SubjectForgotten):
            await open_payload(vault, spec, pb2.Patient, stored)


# -- time series on SQL ----------------------------------------------------------------------------

SIGNIN_NS = "prismtest_pii_v1_sign_in"


async def test_time_series_encrypts_events_and_forget_erases_them(
    db: prism_runtime.Database, url: str, pii: Any
) -> None:
    pb2, prism = pii
    series = prism.SignInSeries(db)
    addresses = [f"198.51.100.{i}" for i in range(10, 16)]
    with prism_runtime.actor("svc-portal", purpose="sign-in"):
        await series.append_many(
            pb2.SignIn(patient_id="p1" if i % 2 else "p2", at_ms=1_700_000_000_000 + i, ip=ip, device="phone")
            for i, ip in enumerate(addresses)
        )
        got = [e.ip async for e in series.query("p1")]
    assert got == addresses[1::2]
    stored = b"".join(
        v if isinstance(v, bytes) else str(v).encode()
        for row in await raw(url, f"SELECT * FROM {SIGNIN_NS}")
        for v in row
    )
    assert all(ip.encode() not in stored for ip in addresses) and b"phone" in stored
    # Event ids are keyed digests: an unkeyed one could be checked against guesses of the encrypted values.
    stored_ids = {r[0] for r in await raw(url, f'SELECT "{EVENT_ID_COLUMN}" FROM {SIGNIN_NS}')}
    first = pb2.SignIn(patient_id="p2", at_ms=1_700_000_000_000, ip=addresses[0], device="phone")
    assert len(stored_ids) == 6 and event_id(first) not in stored_ids
    actions = await raw(
        url, "SELECT action, actor FROM prism_audit WHERE message = 'prismtest.pii.v1.SignIn'"
    )
    assert actions == [("write", "svc-portal")] * 6 + [("decrypt", "svc-portal")] * 3

    receipt = await prism.forget(db, "p1")
    assert (SIGNIN_NS, 3) in {(e.namespace, e.rows_deleted) for e in receipt.erasures}
    assert [e.ip async for e in series.query("p1")] == []
    assert [e.ip async for e in series.query("p2")] == addresses[0::2]


async def test_time_series_ciphertext_is_bound_to_its_event_and_survives_reencrypt(
    db: prism_runtime.Database, url: str, pii: Any, tmp_path: Path
) -> None:
    pb2, prism = pii
    series = prism.SignInSeries(db)
    addresses = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    await series.append_many(
        pb2.SignIn(patient_id="p1", at_ms=1_700_000_000_000 + i, ip=ip, device="phone")
        for i, ip in enumerate(addresses)
    )
    # Each event is its own record: the sweep moves every event onto the new generation, one by one.
    assert prism_cli("keys", "rotate", url=url).returncode == 0
    swept = prism_cli("keys", "reencrypt", url=url)
    assert swept.returncode == 0, swept.stderr
    assert "3 encrypted value(s), moved 3" in swept.stdout
    async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as fresh:
        assert [e.ip async for e in prism.SignInSeries(fresh).query("p1")] == addresses

    # A ciphertext copied onto another event of the same subject does not decrypt there.
    stored = await raw(url, f'SELECT ip, "{EVENT_ID_COLUMN}" FROM {SIGNIN_NS} ORDER BY at_ms')
    await raw(
        url, f'UPDATE {SIGNIN_NS} SET ip = ? WHERE "{EVENT_ID_COLUMN}" = ?', (stored[0][0], stored[1][1])
    )
    with pytest.raises(prism_runtime.DecryptionError, match="'ip'"):
        [e async for e in series.query("p1")]


# -- time series on Kafka and NATS -----------------------------------------------------------------


async def _raw_stream_payloads(kind: str, address: str, key: str) -> list[bytes]:
    """Read a series' records straight from the broker, as anyone with access to it could."""
    if kind == "kafka":
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            SIGNIN_NS, bootstrap_servers=address, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            found: list[bytes] = []
            for _ in range(40):
                batch = await consumer.getmany(timeout_ms=250)
                found += [r.value for rs in batch.values() for r in rs if r.key == key.encode()]
                if len(found) >= 3:
                    break
            return found
        finally:
            await consumer.stop()
    import nats

    from prism_runtime.backends.nats import subject_of

    nc = await nats.connect(address, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject_of(SIGNIN_NS, key), stream=SIGNIN_NS)
        msgs = await sub.fetch(3, timeout=5)
        await sub.unsubscribe()
        return [m.data for m in msgs]
    finally:
        await nc.close()


@pytest.mark.parametrize("kind", ["kafka", "nats"])
async def test_stream_time_series_seals_payloads_and_forget_shreds_them(
    kind: str, request: pytest.FixtureRequest, pii: Any, tmp_path: Path
) -> None:
    import uuid

    pb2, prism = pii
    address = request.getfixturevalue("kafka_bootstrap" if kind == "kafka" else "nats_url")
    stream = f"kafka://{address}?idempotence=false" if kind == "kafka" else address
    config = {
        "backends": {kind: stream, "sqlite": f"sqlite:///{tmp_path / 'keys.db'}"},
        "namespaces": {SIGNIN_NS: kind},
    }
    patient_id = f"p-{uuid.uuid4().hex[:12]}"
    addresses = ["192.0.2.41", "192.0.2.42", "192.0.2.43"]
    wrapper = LocalKeyWrapper(tmp_path / "master.key")
    async with prism_runtime.connect(config=config, key_wrapper=wrapper) as db:
        series = prism.SignInSeries(db)
        assert db.kind_for(series.spec) == kind
        await series.append_many(
            pb2.SignIn(patient_id=patient_id, at_ms=1_700_000_000_000 + i, ip=ip, device="tablet")
            for i, ip in enumerate(addresses)
        )
        assert [e.ip async for e in series.query(patient_id)] == addresses
        payloads = await _raw_stream_payloads(kind, address, patient_id)
        assert len(payloads) == 3
        assert all(ip.encode() not in p for p in payloads for ip in addresses)
        assert all(b"tablet" in p for p in payloads), "fields without encrypt_at_rest stay readable"

        receipt = await prism.forget(db, patient_id)
        assert receipt.keys_destroyed == 1
        # The log keeps the records (Kafka and NATS cannot delete one), but nothing reads them: a query
        # skips them, as on SQL, and opening one directly raises the typed error.
        assert [e async for e in series.query(patient_id)] == []
        assert await _raw_stream_payloads(kind, address, patient_id) == payloads
        from prism_runtime.pii.payload import open_payload
        from prism_runtime.pii.vault import vault_serving

        vault = vault_serving(db, series.spec)
        with pytest.raises(prism_runtime.SubjectForgotten, match=SIGNIN_NS):
            await open_payload(vault, series.spec, pb2.SignIn, payloads[0])


@pytest.mark.parametrize("kind", ["kafka", "nats"])
async def test_forget_lists_stream_namespaces_and_what_they_keep(
    kind: str, request: pytest.FixtureRequest, pii: Any, tmp_path: Path
) -> None:
    """A stream's log cannot be edited: the receipt says what stays there, "not erasable" for pii in clear."""
    import uuid

    pb2, prism = pii
    address = request.getfixturevalue("kafka_bootstrap" if kind == "kafka" else "nats_url")
    stream = f"kafka://{address}?idempotence=false" if kind == "kafka" else address
    keys = f"sqlite:///{tmp_path / 'keys.db'}"
    config = {"backends": {kind: stream, "sqlite": keys}, "namespaces": {CHAT_NS: kind, SIGNIN_NS: kind}}
    user = f"u-{uuid.uuid4().hex[:12]}"
    async with prism_runtime.connect(
        config=config, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")
    ) as db:
        await prism.ChatLineSeries(db).append(pb2.ChatLine(user_id=user, at_ms=1, nickname="Jay", text="hi"))
        await prism.SignInSeries(db).append(pb2.SignIn(patient_id=user, at_ms=1, ip="192.0.2.9"))
        receipt = await prism.forget(db, user)

    assert receipt.erasures == ()
    assert {(k.namespace, k.backend, k.plaintext_fields, k.reason) for k in receipt.kept} == {
        (CHAT_NS, kind, ("nickname",), "shown to everyone in the room"),
        (SIGNIN_NS, kind, (), ""),
    }
    assert [k.namespace for k in receipt.not_erasable] == [CHAT_NS]
    lines = receipt.lines()
    assert (
        f"  {CHAT_NS} (prismtest.pii.v1.ChatLine) on {kind}: not erasable: shown to everyone in the room "
        "(pii in clear in the log: nickname)"
    ) in lines
    assert (
        f"  {SIGNIN_NS} (prismtest.pii.v1.SignIn) on {kind}: records kept, their encrypted fields unreadable "
        "(keys destroyed)"
    ) in lines
    # The command line reads the same from the catalog on the keys' SQL backend, with no stream connected.
    env_key = {"PRISM_MASTER_KEY_FILE": str(tmp_path / "master.key")}
    done = subprocess.run(
        [tool("prism"), "forget", "someone-else", "--url", keys],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **env_key},
    )
    assert done.returncode == 0, done.stderr
    assert f"{CHAT_NS} (prismtest.pii.v1.ChatLine) on {kind}: not erasable: shown to everyone" in done.stdout
