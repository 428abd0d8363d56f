"""Run the registered rules over an image (lint) or a pair of images (breaking) and apply the config."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Importing the rule modules registers their rules.
from protoc_gen_prism.checks import lint, protection, storage, streams, wire
from protoc_gen_prism.checks.compare import Comparison
from protoc_gen_prism.checks.config import CheckConfig
from protoc_gen_prism.checks.rules import CHECKS, RULES, SCHEMA_INVALID, Category, Finding, Hit, Severity
from protoc_gen_prism.diagnostics import SchemaError
from protoc_gen_prism.images import Image
from protoc_gen_prism.model import Schema

RULE_MODULES = (lint, wire, storage, protection, streams)


def _schema(image: Image) -> tuple[Schema | None, list[Finding]]:
    try:
        return image.schema(), []
    except SchemaError as error:
        return None, [
            Finding(d.location, SCHEMA_INVALID.id, f"{d.element}: {d.message}") for d in error.diagnostics
        ]


def _run(
    config: CheckConfig,
    categories: Iterable[Category],
    call: Callable[[Callable[..., Iterable[Hit]]], Iterable[Hit]],
) -> list[Finding]:
    wanted = set(categories)
    found = []
    for rule_id, check in CHECKS.items():
        if RULES[rule_id].category not in wanted or config.severity_of(rule_id) is Severity.OFF:
            continue
        for hit in call(check):
            finding = config.apply(rule_id, Finding(hit.location, rule_id, hit.message))
            if finding is not None:
                found.append(finding)
    return found


def lint_image(image: Image, config: CheckConfig) -> list[Finding]:
    """Return every lint finding of a schema; a schema the plugin rejects yields SCHEMA_INVALID findings only."""
    schema, invalid = _schema(image)
    if schema is None:
        return sorted(invalid)
    return sorted(_run(config, [Category.LINT], lambda check: check(schema)))


def breaking_changes(before: Image, after: Image, config: CheckConfig) -> list[Finding]:
    """Return every breaking change from `before` to `after`; model rules run only when both sides build."""
    before_schema, broken = _schema(before)
    after_schema, invalid = _schema(after)
    # Without the baseline's model the storage, protection and stream rules cannot run: that must not pass.
    invalid += [Finding(f.location, f.rule, f"baseline: {f.message}") for f in broken]
    change = Comparison(before, after, before_schema, after_schema)
    categories = [c for c in Category if c is not Category.LINT]
    return sorted(invalid + _run(config, categories, lambda check: check(change)))
