"""What the admin looks at: the config, the plan and the generated SQL, loaded once when it starts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from prism_runtime.config import BackendUrl, Config, load_config
from protoc_gen_prism.admin.settings import AdminSettings
from protoc_gen_prism.cli.ops.provision import generated_source, sql_urls
from protoc_gen_prism.plan_source import LoadedPlan, PlanUnavailable, load_plan


@dataclass(frozen=True)
class Deployment:
    """The admin's view of one deployment: settings, config, plan and generated directory."""

    settings: AdminSettings
    config: Config
    plan: LoadedPlan | None
    generated: Path | None  # holds sql/<dialect>/ for the provisioning dry run
    plan_problem: str = ""  # why there is no plan

    @property
    def sql_urls(self) -> list[BackendUrl]:
        """Return the SQL databases of the config, where schema history, keys and audit live."""
        return sql_urls(self.config)


@contextmanager
def open_deployment(settings: AdminSettings) -> Iterator[Deployment]:
    """Load the config and the plan; a .proto source is compiled into a directory kept while the admin runs."""
    config = load_config(None, settings.config)
    with ExitStack() as stack:
        yield _load(settings, config, stack)


def _load(settings: AdminSettings, config: Config, stack: ExitStack) -> Deployment:
    source = settings.source
    if source is None:
        return Deployment(
            settings, config, None, None, "no plan: set admin.source in the config, or --source"
        )
    try:
        if source.is_file():
            return Deployment(settings, config, load_plan(source), None)
        made = stack.enter_context(generated_source(source, None, []))
    except PlanUnavailable as error:
        return Deployment(settings, config, None, None, str(error))
    problem = "" if made.plan else f"{source} holds no prism.plan.json"
    return Deployment(settings, config, made.plan, made.generated, problem)
