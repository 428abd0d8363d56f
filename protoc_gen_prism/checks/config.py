"""The checks' config file: per-rule severity and ignores per rule and path; with no file every rule is strict.

# prism-check.yaml, or the `checks:` section of prism.yaml
severity:
  LINT_RESERVED_WORD: warning   # error | warning | off
ignore:
  LINT_PII_PLAINTEXT: [acme/legacy/]   # .proto path prefixes
  "*": [vendor/]                       # every rule
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from prism_runtime.errors import ConfigError
from protoc_gen_prism.checks.rules import RULES, SCHEMA_INVALID, Finding, Severity
from protoc_gen_prism.diagnostics import allowed_values

__all__ = ["CONFIG_FILES", "CheckConfig", "ConfigError", "find_config", "load_check_config"]

CONFIG_FILES = ("prism-check.yaml", "prism.yaml")
_ALL = "*"


@dataclass(frozen=True)
class CheckConfig:
    """Severity overrides and ignored paths, by rule ID."""

    severity: dict[str, Severity] = field(default_factory=dict)
    ignore: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    def severity_of(self, rule_id: str) -> Severity:
        """Return the severity a rule runs with."""
        return self.severity.get(rule_id, RULES[rule_id].severity)

    def apply(self, rule_id: str, finding: Finding) -> Finding | None:
        """Return the finding with its configured severity, or None when ignored or off."""
        severity = self.severity_of(rule_id)
        if severity is Severity.OFF:
            return None
        prefixes = (*self.ignore.get(rule_id, ()), *self.ignore.get(_ALL, ()))
        if any(finding.location.file.startswith(p) for p in prefixes):
            return None
        return Finding(finding.location, finding.rule, finding.message, severity)


def find_config(explicit: Path | None, directory: Path = Path(".")) -> CheckConfig:
    """Load the config named on the command line, else the first of CONFIG_FILES in `directory`, else defaults."""
    if explicit is not None:
        return load_check_config(explicit)
    for name in CONFIG_FILES:
        path = directory / name
        if path.is_file():
            return load_check_config(path)
    return CheckConfig()


def load_check_config(path: Path) -> CheckConfig:
    """Parse a config file; prism.yaml keeps the checks under `checks:` (prism_runtime.config.load_config reads
    the rest of it). A file that cannot be used raises the runtime's ConfigError, saying where."""
    try:
        node = yaml.compose(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not YAML: {error}") from None
    if node is None:
        return CheckConfig(source=str(path))
    top = _mapping(path, node, "the file")
    if path.name == "prism.yaml" or "checks" in top:
        if "checks" not in top:
            return CheckConfig(source=str(path))
        top = _mapping(path, top["checks"][1], "checks")
    for key, (key_node, _) in top.items():
        if key not in ("severity", "ignore"):
            raise ConfigError(
                f"{_where(path, key_node)}: unknown key {key!r}; {allowed_values(key, ['severity', 'ignore'])}"
            )
    severity: dict[str, Severity] = {}
    if "severity" in top:
        for rule_id, (key_node, value_node) in _mapping(path, top["severity"][1], "severity").items():
            _check_rule(path, key_node, rule_id, wildcard=False)
            if rule_id == SCHEMA_INVALID.id:
                raise ConfigError(f"{_where(path, key_node)}: {rule_id} is always an error; fix the schema")
            value = str(value_node.value) if isinstance(value_node, yaml.ScalarNode) else ""
            try:
                severity[rule_id] = Severity(value)
            except ValueError:
                raise ConfigError(
                    f"{_where(path, value_node)}: severity of {rule_id} is {value!r}; "
                    f"{allowed_values(value, list(Severity))}"
                ) from None
    ignore: dict[str, tuple[str, ...]] = {}
    if "ignore" in top:
        for rule_id, (key_node, value_node) in _mapping(path, top["ignore"][1], "ignore").items():
            _check_rule(path, key_node, rule_id, wildcard=True)
            if not isinstance(value_node, yaml.SequenceNode) or not all(
                isinstance(v, yaml.ScalarNode) for v in value_node.value
            ):
                raise ConfigError(
                    f"{_where(path, value_node)}: ignore.{rule_id} must be a list of .proto path prefixes, "
                    "e.g. [acme/legacy/]"
                )
            ignore[rule_id] = tuple(str(v.value) for v in value_node.value)
    return CheckConfig(severity=severity, ignore=ignore, source=str(path))


def _mapping(path: Path, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{_where(path, node)}: {what} must be a mapping")
    return {str(k.value): (k, v) for k, v in node.value}


def _check_rule(path: Path, node: yaml.Node, rule_id: str, *, wildcard: bool) -> None:
    if rule_id in RULES or (wildcard and rule_id == _ALL):
        return
    # Rule IDs are upper case; allowed_values matches lower-case option values.
    close = difflib.get_close_matches(rule_id.upper(), sorted(RULES), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{_where(path, node)}: unknown rule {rule_id!r}; allowed: {', '.join(sorted(RULES))}{hint}"
    )


def _where(path: Path, node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}"
