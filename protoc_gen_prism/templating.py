"""The jinja2 environment for generated code: strict, whitespace-exact, loaded from the package.

Compiling a template is most of what rendering a small schema costs (jinja lexes and parses it in Python),
and a plugin process would compile it again on every protoc run; so the compiled code is kept between runs
in the user's cache directory, as Python keeps bytecode in __pycache__. jinja rejects a kept copy whose
template source changed; the key also covers jinja's version and the environment's options. A cache that
cannot be written (a read-only or missing home, a sandbox) only means compiling every time.
"""

from __future__ import annotations

import contextlib
import os
from functools import cache
from hashlib import sha1
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

from protoc_gen_prism.package_data import data_dir

CACHE_ENV = "PRISM_TEMPLATE_CACHE"
"""Set to a directory to keep compiled templates there, or to "" to keep none."""


@cache
def environment() -> jinja2.Environment:
    """Return the shared template environment (templates live in the top-level templates/ directory)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(data_dir("templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.bytecode_cache = _compiled_templates(env)
    return env


def render(template: str, **context: object) -> str:
    """Render `template` with `context`."""
    return environment().get_template(template).render(**context)


class _KeptTemplates(jinja2.FileSystemBytecodeCache):
    """jinja's file cache of compiled templates, its keys also naming what the code depends on besides the
    template source, quiet when a file cannot be read or written."""

    def __init__(self, directory: str, depends_on: str) -> None:
        super().__init__(directory, "%s.jinja-code")
        self._depends_on = depends_on

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return sha1(f"{super().get_cache_key(name, filename)}|{self._depends_on}".encode()).hexdigest()

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):  # not kept: the next run compiles again
            super().dump_bytecode(bucket)


def _compiled_templates(env: jinja2.Environment) -> jinja2.BytecodeCache | None:
    """Return the cache of `env`'s compiled templates, or None when there is no directory to keep it in."""
    chosen = os.environ.get(CACHE_ENV)
    try:
        if chosen is None:
            base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
            directory = Path(base) / "protoc-gen-prism" / "templates"
        elif chosen:
            directory = Path(chosen)
        else:
            return None
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: Path.home() without a home directory
        return None
    # What the compiled code depends on besides the template: jinja itself and how the source is read.
    depends_on = (
        jinja2.__version__,
        env.trim_blocks,
        env.lstrip_blocks,
        env.keep_trailing_newline,
        env.newline_sequence,
        env.autoescape,
        env.optimized,
        sorted(env.extensions),
    )
    return _KeptTemplates(str(directory), repr(depends_on))
