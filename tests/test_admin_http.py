"""`prism admin` over HTTP: the token off loopback, CSRF on every POST, confirmed and audited actions."""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from admin_support import ACTOR, PRISM, Seeded, admin_server, call, free_port, prism, seed

import prism_runtime
from prism_runtime.pii.wrappers import LocalKeyWrapper

TOKEN = "t0ken-for-the-admin-tests-7f3a9c"


@pytest.fixture(scope="module")
def seeded(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("admin-http"))


@pytest.fixture(scope="module")
def loopback(seeded: Seeded) -> Iterator[str]:
    with admin_server(seeded) as base:
        yield base


def outside_address() -> str | None:
    """Return an address of this machine that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = str(s.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, page[:500]
    return found.group(1)


def test_a_bind_off_loopback_without_a_token_refuses_to_start(seeded: Seeded) -> None:
    done = subprocess.run(
        [*PRISM, "admin", "--config", str(seeded.config), "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PRISM_ADMIN_TOKEN")},
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "needs a token" in done.stderr and "PRISM_ADMIN_TOKEN" in done.stderr


def test_off_loopback_every_page_needs_the_token(seeded: Seeded) -> None:
    with admin_server(seeded, host="0.0.0.0", token=TOKEN) as base:
        outside = outside_address()
        bases = [base] + ([base.replace("127.0.0.1", outside)] if outside else [])
        for where in bases:
            for path in ("/", "/namespaces", "/audit", "/audit/export?db=0", "/keys", "/metrics/live"):
                nothing = call("GET", where + path)
                assert nothing.status == 401, (where, path)
                assert nothing.headers["WWW-Authenticate"].startswith("Bearer")
                wrong = call("GET", where + path, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
                assert wrong.status == 401
                assert call("GET", where + path, headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
        assert call("GET", base + "/login").status == 200, "the login page is open"
        assert call("GET", base + "/static/admin.js").status == 200

        # A person logs in through the form: a wrong token is refused, the right one gives a session cookie
        # (an HMAC of the token, never the token itself).
        login = call("GET", base + "/login")
        csrf = login.cookies()["prism_admin_csrf"]
        jar = {"Cookie": f"prism_admin_csrf={csrf}"}
        refused = call("POST", base + "/login", headers=jar, body=urlencode({"csrf": csrf, "token": "nope"}))
        assert refused.status == 401 and "not the admin token" in refused.text
        no_csrf = call("POST", base + "/login", headers=jar, body=urlencode({"token": TOKEN}))
        assert no_csrf.status == 403
        accepted = call("POST", base + "/login", headers=jar, body=urlencode({"csrf": csrf, "token": TOKEN}))
        assert accepted.status == 303
        session = accepted.cookies()["prism_admin_session"]
        assert TOKEN not in session
        page = call("GET", base + "/keys", headers={"Cookie": f"prism_admin_session={session}"})
        assert page.status == 200 and "forgotten subjects" in page.text
        forged = call("GET", base + "/keys", headers={"Cookie": "prism_admin_session=" + "0" * 64})
        assert forged.status == 401


def test_loopback_answers_only_a_loopback_host_name(loopback: str) -> None:
    assert call("GET", loopback + "/").status == 200
    assert call("GET", loopback + "/", headers={"Host": "localhost"}).status == 200
    rebound = call("GET", loopback + "/", headers={"Host": "attacker.example:80"})
    assert rebound.status == 403


def keys_state(base: str) -> tuple[str, str]:
    page = call("GET", base + "/keys")
    generation = re.search(r"<dt>data key generation</dt><dd>(\d+)</dd>", page.text)
    assert generation, page.text
    return generation.group(1), page.cookies().get("prism_admin_csrf", "")


def test_a_state_change_needs_csrf_and_a_confirmation_and_is_audited(loopback: str) -> None:
    before, csrf = keys_state(loopback)
    assert csrf, "the first page sets the CSRF cookie"
    jar = {"Cookie": f"prism_admin_csrf={csrf}"}
    url = loopback + "/actions/rotate-keys"

    missing = call("POST", url, headers=jar, body=urlencode({"db": "0", "confirm": "yes"}))
    assert missing.status == 403 and "CSRF" in missing.text
    wrong = call("POST", url, headers=jar, body=urlencode({"db": "0", "confirm": "yes", "csrf": "0" * 64}))
    assert wrong.status == 403
    no_cookie = call("POST", url, body=urlencode({"db": "0", "confirm": "yes", "csrf": csrf}))
    assert no_cookie.status == 403
    cross_site = call(
        "POST",
        url,
        headers={**jar, "Origin": "https://attacker.example"},
        body=urlencode({"db": "0", "confirm": "yes", "csrf": csrf}),
    )
    assert cross_site.status == 403
    assert call("GET", url).status == 405, "actions are POST only"
    assert keys_state(loopback)[0] == before, "nothing refused changed anything"

    asked = call("POST", url, headers=jar, body=urlencode({"db": "0", "csrf": csrf}))
    assert asked.status == 200 and "Start a new data key generation" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert keys_state(loopback)[0] == before, "asking is not doing"

    done = call("POST", url, headers=jar, body=urlencode({"db": "0", "csrf": csrf, "confirm": "yes"}))
    assert done.status == 200, done.text
    assert f"data key generation {int(before) + 1} is primary" in done.text
    assert f"by {ACTOR}" in done.text
    assert keys_state(loopback)[0] == str(int(before) + 1)

    audit = call("GET", loopback + "/audit").text
    assert "Chain verified" in audit
    newest = re.search(
        r"<tbody>\s*<tr><td class=\"num\">\d+</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>",
        audit,
    )
    assert newest, audit
    assert newest.groups() == (ACTOR, "rotate keys", "admin.rotate-keys")


def test_a_phase_change_of_a_namespace_without_a_migration_is_refused(loopback: str) -> None:
    page = call("GET", loopback + "/migrations")
    assert "not configured" in page.text
    csrf = page.cookies()["prism_admin_csrf"]
    body = urlencode(
        {"namespace": "prismtest_pii_v1_patient", "phase": "shadow", "csrf": csrf, "confirm": "yes"}
    )
    answer = call(
        "POST",
        loopback + "/actions/advance-migration",
        headers={"Cookie": f"prism_admin_csrf={csrf}"},
        body=body,
    )
    assert answer.status == 409 and "has no migration in the config" in answer.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("admin:\n  metric_url: http://x\n", "admin: unknown key 'metric_url'; allowed: actor, metrics_url"),
        ("admin:\n  scrape_seconds: 0\n", "admin.scrape_seconds must be a positive number of seconds"),
        ("backends:\n  sqlite: postgresql://db/app\n", "backends.sqlite is a postgres URL"),
        ("admin: [1]\n", "admin must be a mapping"),
    ],
)
def test_a_config_it_cannot_use_is_refused_before_serving(
    tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from protoc_gen_prism.cli import main

    config = tmp_path / "prism.yaml"
    config.write_text(text)
    assert main(["admin", "--config", str(config)]) == 2
    assert expected in capsys.readouterr().err


def test_a_short_token_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prism_runtime.errors import ConfigError
    from protoc_gen_prism.admin.settings import load_settings

    config = tmp_path / "prism.yaml"
    config.write_text("admin:\n  source: gen\n")
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        load_settings(config, environ={"PRISM_ADMIN_TOKEN": "short"})
    settings = load_settings(config, host="0.0.0.0", environ={"PRISM_ADMIN_TOKEN": TOKEN})
    assert TOKEN not in repr(settings) and "token=set" in repr(settings)


def test_brokers_that_do_not_answer_are_a_line_on_the_page_not_a_failed_page(
    generated: Path, tmp_path: Path
) -> None:
    seeded = seed(tmp_path)
    closed = free_port()  # nothing listens there
    config = yaml.safe_load(seeded.config.read_text())
    config["backends"] |= {"nats": f"nats://127.0.0.1:{closed}", "kafka": f"kafka://127.0.0.1:{closed}"}
    seeded.config.write_text(yaml.safe_dump(config))
    with admin_server(seeded) as base:
        started = time.monotonic()
        streams = call("GET", base + "/streams")
        namespaces = call("GET", base + "/namespaces")
        took = time.monotonic() - started
    assert streams.status == namespaces.status == 200
    assert "cannot reach the server" in streams.text or "did not answer" in streams.text
    assert 'class="problem"' in namespaces.text and "prismtest_pii_v1_patient" in namespaces.text
    assert took < 40, "each page waits for the brokers at most BROKER_SECONDS"


def test_the_audit_pages_back_through_the_entries_newest_first(seeded: Seeded, loopback: str) -> None:
    async def reads() -> None:
        stores = importlib.import_module("prismtest.pii.v1.pii_prism")
        wrapper = LocalKeyWrapper(seeded.key_file)
        async with prism_runtime.connect(seeded.database, key_wrapper=wrapper) as db:
            for _ in range(30):  # each read of the audited ssn appends an entry
                await stores.PatientStore(db).get("p-secret-1")

    asyncio.run(reads())
    newest = call("GET", loopback + "/audit").text
    assert "Chain verified" in newest
    seqs = [int(s) for s in re.findall(r'<tr><td class="num">(\d+)</td>', newest)]
    assert len(seqs) == 25 and seqs == sorted(seqs, reverse=True)
    older = re.search(r'<a href="/audit\?before=(\d+)">older</a>', newest)
    assert older and "newer</a>" not in newest
    page = call("GET", loopback + f"/audit?before={older.group(1)}").text
    assert "Chain verified" not in page and "verification is on the" in page
    back = [int(s) for s in re.findall(r'<tr><td class="num">(\d+)</td>', page)]
    assert back and back[0] == seqs[-1] - 1 and back == sorted(back, reverse=True)
    newer = re.search(r'<a href="/audit\?before=(\d+)">newer</a>', page)
    assert newer
    again = call("GET", loopback + f"/audit?before={newer.group(1)}").text
    assert [int(s) for s in re.findall(r'<tr><td class="num">(\d+)</td>', again)][-1] == seqs[-1]


def test_the_schema_page_lists_what_provisioning_would_apply_and_applies_nothing(
    generated: Path, tmp_path: Path
) -> None:
    seeded = seed(tmp_path)
    gen = tmp_path / "gen"
    assert prism(["generate", str(tmp_path / "protos"), "-o", str(gen), "--no-python"]) == 0
    extra = gen / "sql" / "sqlite" / "extra" / "v1" / "extra.sql"
    extra.parent.mkdir(parents=True)
    extra.write_text('CREATE TABLE IF NOT EXISTS "extra_notes" ("id" TEXT NOT NULL PRIMARY KEY);\n')
    config = yaml.safe_load(seeded.config.read_text())
    config["admin"]["source"] = str(gen)
    seeded.config.write_text(yaml.safe_dump(config))
    with admin_server(seeded) as base:
        page = call("GET", base + "/schema").text
    assert "Migrations: none. Files: sql/sqlite/extra/v1/extra.sql." in page
    assert "sql/sqlite/extra/v1/extra.sql: table extra_notes would be created" in page
    assert "sql/sqlite/prismtest/pii/v1/pii.sql: unchanged" in page
    with sqlite3.connect(tmp_path / "prism.db") as db:
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'extra_notes'").fetchall()
