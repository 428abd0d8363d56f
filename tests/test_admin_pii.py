"""No PII value on any admin page: seed a PII workload, crawl every page from the index, search the HTML."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from admin_support import PII_VALUES, Seeded, admin_server, call, seed

from protoc_gen_prism.admin.app import PAGES


class Links(HTMLParser):
    """The same-site links, assets and POST forms of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._form: tuple[str, dict[str, str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a["src"])
        elif tag == "form" and a.get("method") == "post":
            self._form = (a["action"], {})
        elif tag == "input" and self._form is not None and a.get("type") == "hidden":
            self._form[1][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None


def crawl(base: str) -> dict[str, str]:
    """Fetch every page reachable from the index (links, assets, and each form posted unconfirmed)."""
    seen: dict[str, str] = {}
    queue = ["/"]
    cookie = ""
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        answer = call("GET", base + path, headers={"Cookie": cookie} if cookie else None)
        assert answer.status == 200, (path, answer.status, answer.text[:300])
        cookie = cookie or f"prism_admin_csrf={answer.cookies()['prism_admin_csrf']}"
        seen[path] = answer.text
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        parser = Links()
        parser.feed(answer.text)
        for href in parser.links:
            target = urlsplit(urljoin(base + path, href))
            if target.netloc == urlsplit(base).netloc:
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
        for action, fields in parser.forms:
            key = f"POST {action} {sorted(fields.items())}"
            if key not in seen and action.startswith("/actions/"):
                asked = call("POST", base + action, headers={"Cookie": cookie}, body=urlencode(fields))
                assert asked.status == 200, (action, asked.text[:300])
                assert 'name="confirm" value="yes"' in asked.text, "posted unconfirmed: only the question"
                seen[key] = asked.text
    return seen


@pytest.fixture(scope="module")
def seeded(generated: Path, nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("admin-pii"), nats_url=nats_url, migration=True)


@pytest.fixture(scope="module")
def base(seeded: Seeded) -> Iterator[str]:
    with admin_server(seeded) as url:
        yield url


def test_no_page_shows_a_pii_value(base: str) -> None:
    pages = crawl(base)
    assert {p.path for p in PAGES} <= set(pages), sorted(pages)
    assert "/audit/export?db=0" in pages and "/static/admin.js" in pages
    assert any(key.startswith("POST /actions/rotate-keys") for key in pages)
    assert any(key.startswith("POST /actions/advance-migration") for key in pages)
    for where, text in pages.items():
        for value in PII_VALUES:
            assert value.lower() not in text.lower(), f"{value!r} on {where}"

    # What a person reads there, without any value: protections, pseudonyms, counts.
    namespaces = pages["/namespaces"]
    assert "prismtest_pii_v1_patient" in namespaces
    assert "<code>ssn</code> ssn: encrypted, audited, masked in logs" in namespaces
    assert "<code>email</code> email: encrypted, searchable, masked in logs" in namespaces
    assert "<code>last_ip</code> ip: in clear: abuse triage needs the /24" in namespaces
    assert "sqlite (sqlite:///" in namespaces
    assert "nats (nats://127.0.0.1:" in namespaces
    assert '<td class="num">2</td>' in namespaces, "two patients left after forgetting one"
    chat_line = namespaces[namespaces.index("<strong>prismtest_pii_v1_chat_line") :]
    assert '<td class="num">1</td>' in chat_line[: chat_line.index("</tr>")], "a stream's records are counted"
    keys = pages["/keys"]
    assert '<dd class="forgotten">1</dd>' in keys
    audit = pages["/audit"]
    assert "Chain verified" in audit and "<code>s_" in audit
    export = pages["/audit/export?db=0"]
    assert '"subject_ref": "s_' in export and '"checkpoint"' in export
    streams = pages["/streams"]
    chat = streams[streams.index("prismtest_pii_v1_chat_line") :]
    assert "matches the plan" in chat[: chat.index("</tr>")]
    assert '<td class="num">1</td>' in chat[: chat.index("</tr>")], "one chat line on the stream"
    schema = pages["/schema"]
    assert "Nothing pending: every generated file is applied." in schema
    assert "prism_schema_history" in schema and "sql/sqlite/prismtest/pii/v1/pii.sql" in schema
