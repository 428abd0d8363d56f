"""The admin's routes: one page per source module, live fragments, the confirmed actions, login and export."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from prism_runtime.config import BackendUrl
from protoc_gen_prism import __version__
from protoc_gen_prism.admin import charts, security
from protoc_gen_prism.admin.deployment import Deployment, open_deployment
from protoc_gen_prism.admin.settings import AdminSettings
from protoc_gen_prism.admin.sources import audit, keys, metrics, migrations, namespaces, schema, streams
from protoc_gen_prism.admin.sources.databases import problem
from protoc_gen_prism.cli.ops.database import open_vault


@dataclass(frozen=True)
class Page:
    """A page of the navigation."""

    path: str
    title: str
    about: str


PAGES = (
    Page("/namespaces", "Namespaces", "abstraction, planned and bound backend and why, retention, PII, rows"),
    Page("/schema", "Schema", "prism_schema_history, pending migrations, the provisioning dry run"),
    Page("/streams", "Streams", "planned Kafka topics and NATS streams against the brokers"),
    Page("/audit", "Audit", "chain verification, newest entries, export"),
    Page("/keys", "Keys", "key generations, rotation state, forgotten subjects"),
    Page("/migrations", "Shadow migrations", "phase, backfill, mismatch rate; advance a phase"),
    Page("/metrics", "Metrics", "ops/s and p50/p99 per namespace over the last minutes"),
)


@dataclass(frozen=True)
class Done:
    """What an action did, and whose audit log records it."""

    message: str
    audit_on: BackendUrl | None
    purpose: str


@dataclass(frozen=True)
class Action:
    """A state-changing action: a POST with CSRF, confirmed on a second page, then audited."""

    name: str
    back: str
    question: Callable[[dict[str, str]], str]
    run: Callable[[Deployment, dict[str, str]], Awaitable[Done]]


def _index(form: dict[str, str], deployment: Deployment) -> int:
    try:
        index = int(form.get("db", ""))
        deployment.sql_urls[index]
    except (ValueError, IndexError):
        raise HTTPException(400, "no such database") from None
    return index


async def _rotate(deployment: Deployment, form: dict[str, str]) -> Done:
    index = _index(form, deployment)
    message = await keys.rotate(deployment, index)
    return Done(message, deployment.sql_urls[index], "rotate keys")


async def _advance(deployment: Deployment, form: dict[str, str]) -> Done:
    namespace, phase = form.get("namespace", ""), form.get("phase", "")
    message = await migrations.advance(deployment, namespace, phase)
    # set_phase writes its own audit entry, in the transaction that changes the phase.
    return Done(message, None, f"advance the migration of {namespace} to {phase}")


ACTIONS = {
    a.name: a
    for a in (
        Action(
            "rotate-keys",
            "/keys",
            lambda form: (
                "Start a new data key generation on this database? Old data still decrypts; "
                "`prism keys reencrypt` moves it forward."
            ),
            _rotate,
        ),
        Action(
            "advance-migration",
            "/migrations",
            lambda form: (
                f"Move the migration of {form.get('namespace', '')} to phase {form.get('phase', '')}?"
            ),
            _advance,
        ),
    )
}


def environment() -> jinja2.Environment:
    """Return the templates' environment: autoescaped, strict about undefined names."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("protoc_gen_prism.admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_app(settings: AdminSettings) -> Starlette:
    """Return the admin application for `settings`."""
    env = environment()

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        deployment: Deployment = request.app.state.deployment
        page = env.get_template(name).render(
            pages=PAGES,
            path=request.url.path,
            csrf=request.state.csrf,
            actor=settings.actor,
            config=str(settings.config),
            version=__version__,
            backends=[u.redacted for u in deployment.config.backends.values()],
            **context,
        )
        return HTMLResponse(page, status_code=status)

    def deployment_of(request: Request) -> Deployment:
        found: Deployment = request.app.state.deployment
        return found

    async def index(request: Request) -> Response:
        return render(request, "index.html")

    async def namespaces_page(request: Request) -> Response:
        return render(request, "namespaces.html", view=await namespaces.namespaces(deployment_of(request)))

    async def schema_page(request: Request) -> Response:
        return render(request, "schema.html", views=await schema.schema(deployment_of(request)))

    async def streams_page(request: Request) -> Response:
        return render(request, "streams.html", view=await streams.streams(deployment_of(request)))

    async def audit_page(request: Request) -> Response:
        before = request.query_params.get("before")
        start = int(before) if before and before.isdigit() else None
        return render(request, "audit.html", views=await audit.audit(deployment_of(request), start))

    async def audit_export(request: Request) -> Response:
        deployment = deployment_of(request)
        index = _index(dict(request.query_params), deployment)
        return StreamingResponse(
            audit.export(deployment.sql_urls[index]),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="prism-audit-{index}.jsonl"'},
        )

    async def keys_page(request: Request) -> Response:
        return render(request, "keys.html", views=await keys.keys(deployment_of(request)))

    async def migrations_page(request: Request) -> Response:
        view = await migrations.migrations(deployment_of(request), request.app.state.scraper)
        return render(request, "migrations.html", view=view, every=settings.scrape_seconds)

    async def migrations_live(request: Request) -> Response:
        view = await migrations.migrations(deployment_of(request), request.app.state.scraper)
        return render(request, "migrations_live.html", view=view)

    def metrics_context(request: Request) -> dict[str, Any]:
        scraper: metrics.Scraper | None = request.app.state.scraper
        if scraper is None:
            return {"configured": False, "rows": [], "error": "", "scrapes": 0}
        window = scraper.window
        rows = []
        for ns in window.namespaces():
            points = window.series(ns)
            times = [p.wall for p in points]
            rows.append(
                {
                    "namespace": ns,
                    "overall": window.overall(ns),
                    "rate": charts.line_chart(
                        f"{ns}: operations per second",
                        times,
                        [("ops/s", "ops", [p.ops for p in points])],
                        charts.per_second,
                    ),
                    "latency": charts.line_chart(
                        f"{ns}: latency",
                        times,
                        [("p50", "p50", [p.p50 for p in points]), ("p99", "p99", [p.p99 for p in points])],
                        charts.milliseconds,
                    ),
                }
            )
        return {"configured": True, "rows": rows, "error": scraper.error, "scrapes": scraper.scrapes}

    async def metrics_page(request: Request) -> Response:
        context = metrics_context(request)
        return render(
            request, "metrics.html", every=settings.scrape_seconds, url=settings.metrics_url, **context
        )

    async def metrics_live(request: Request) -> Response:
        return render(request, "metrics_live.html", **metrics_context(request))

    async def act(request: Request) -> Response:
        action = ACTIONS.get(request.path_params["name"])
        if action is None:
            raise HTTPException(404, "no such action")
        form = await security.checked_form(request)
        fields = {k: v for k, v in form.items() if k not in (security.CSRF_FIELD, "confirm")}
        if form.get("confirm") != "yes":
            return render(
                request, "confirm.html", action=action, question=action.question(fields), fields=fields
            )
        deployment = deployment_of(request)
        try:
            done = await action.run(deployment, fields)
            if done.audit_on is not None:
                async with open_vault(done.audit_on.url) as (_, vault):
                    entry = await audit.record_action(
                        vault, settings.actor, f"admin.{action.name}", done.purpose
                    )
                message = f"{done.message} (audit entry {entry.seq}, by {settings.actor})"
            else:
                message = done.message
        except HTTPException:
            raise
        except Exception as error:  # shown on the page: Prism's errors carry no PII
            return render(request, "done.html", status=409, action=action, ok=False, message=problem(error))
        return render(request, "done.html", action=action, ok=True, message=message)

    async def login_page(request: Request) -> Response:
        return render(request, "login.html", wrong=False)

    async def login(request: Request) -> Response:
        form = await security.checked_form(request)
        token = settings.token
        if token is None:
            return RedirectResponse("/", status_code=303)
        if not security.token_matches(form.get("token", ""), token):
            return render(request, "login.html", status=401, wrong=True)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            security.SESSION_COOKIE, security.session_value(token), httponly=True, samesite="strict"
        )
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with open_deployment(settings) as deployment:
            app.state.deployment = deployment
            scraper = (
                metrics.Scraper(settings.metrics_url, settings.scrape_seconds, settings.window_minutes * 60)
                if settings.metrics_url
                else None
            )
            app.state.scraper = scraper
            task = asyncio.create_task(scraper.run()) if scraper else None
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return HTMLResponse(
            env.get_template("error.html").render(status=error.status_code, detail=error.detail),
            status_code=error.status_code,
        )

    routes = [
        Route("/", index),
        Route("/namespaces", namespaces_page),
        Route("/schema", schema_page),
        Route("/streams", streams_page),
        Route("/audit", audit_page),
        Route("/audit/export", audit_export),
        Route("/keys", keys_page),
        Route("/migrations", migrations_page),
        Route("/migrations/live", migrations_live),
        Route("/metrics", metrics_page),
        Route("/metrics/live", metrics_live),
        Route("/actions/{name}", act, methods=["POST"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("protoc_gen_prism.admin", "static")]), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(security.Guard, settings=settings)],
        exception_handlers={HTTPException: http_error},
    )
