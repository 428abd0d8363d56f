"""The Schema page: per SQL database, `prism_schema_history`, and what `prism provision --dry-run` would do."""

from __future__ import annotations

from dataclasses import dataclass, field

from protoc_gen_prism.admin.deployment import Deployment
from protoc_gen_prism.admin.sources.databases import opened, problem
from protoc_gen_prism.sql.provision import MIGRATIONS, Applied, history, provision


@dataclass(frozen=True)
class SchemaView:
    """One SQL database: what was applied, what is pending, and the dry run's lines."""

    backend: str
    history: list[Applied] = field(default_factory=list)
    pending_migrations: list[str] = field(default_factory=list)
    pending_files: list[str] = field(default_factory=list)
    dry_run: list[str] = field(default_factory=list)
    problem: str = ""


async def schema(deployment: Deployment) -> list[SchemaView]:
    """Read the history of each SQL database and run the provisioning dry run against it."""
    views = []
    for url in deployment.sql_urls:
        try:
            async with opened(url) as (db, driver):
                applied = await history(driver)
                if deployment.generated is None:
                    views.append(SchemaView(url.redacted, applied, problem=deployment.plan_problem))
                    continue
                lines: list[str] = []
                report = await provision(db, deployment.generated, dry_run=True, echo=lines.append)
        except Exception as error:
            views.append(SchemaView(url.redacted, problem=problem(error)))
            continue
        migrations = [s for s in report.applied if s.startswith(f"{MIGRATIONS}/")]
        files = [s for s in report.applied if not s.startswith(f"{MIGRATIONS}/")]
        views.append(SchemaView(url.redacted, applied, migrations, files, lines))
    return views
