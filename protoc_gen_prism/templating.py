"""The jinja2 environment for generated code: strict, whitespace-exact, loaded from the package."""

from __future__ import annotations

from functools import cache

import jinja2

from protoc_gen_prism.package_data import data_dir


@cache
def environment() -> jinja2.Environment:
    """Return the shared template environment (templates live in the top-level templates/ directory)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(data_dir("templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, **context: object) -> str:
    """Render `template` with `context`."""
    return environment().get_template(template).render(**context)
