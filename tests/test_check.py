"""`prism check`: the lint rules on real schemas through the CLI, the three formats and the config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from checks_support import prism, write_schema
from conftest import EXAMPLES, ROOT

from prism_runtime.config import load_config as load_runtime_config
from prism_runtime.errors import ConfigError
from protoc_gen_prism.checks.config import CheckConfig, load_check_config
from protoc_gen_prism.checks.report import Format, render
from protoc_gen_prism.checks.rules import RULES, Category, Finding, Severity
from protoc_gen_prism.checks.runner import lint_image
from protoc_gen_prism.diagnostics import Location
from protoc_gen_prism.images import compile_image

KV = 'option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];'


def test_examples_are_clean() -> None:
    run = prism("check", EXAMPLES)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == "" and "0 error(s), 0 warning(s)" in run.stderr


@pytest.mark.parametrize("rule_id", sorted(r.id for r in RULES.values() if r.category is Category.LINT))
def test_every_lint_example_fires_its_rule(tmp_path: Path, rule_id: str) -> None:
    image = compile_image(write_schema(tmp_path, RULES[rule_id].example))
    fired = {f.rule for f in lint_image(image, CheckConfig())}
    assert rule_id in fired


# (name, body, expected [(rule, line:col)])
CASES = [
    (
        "clean",
        f'message M {{\n  {KV}\n  string email = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true];\n}}',
        [],
    ),
    (
        "plaintext_with_reason",
        f'message M {{\n  {KV}\n  int64 born = 2 [(prism.pii) = "dob", (prism.plaintext_reason) = "age checks"];\n}}',
        [],
    ),
    (
        "pii_in_value_type",
        f'message M {{\n  {KV}\n  Address home = 2;\n}}\nmessage Address {{\n  string street = 1 [(prism.pii) = "address"];\n}}',
        [("LINT_PII_PLAINTEXT", "11:3")],
    ),
    (
        "int_pii_without_reason",
        f'message M {{\n  {KV}\n  int64 born = 2 [(prism.pii) = "dob"];\n}}',
        [("LINT_PII_PLAINTEXT", "8:3")],
    ),
    (
        "audit_without_pii",
        f"message M {{\n  {KV}\n  string a = 2 [(prism.access_audit) = true];\n}}",
        [("LINT_AUDIT_WITHOUT_PII", "8:3")],
    ),
    (
        "searchable_in_clear_is_refused_by_the_compiler",
        f"message M {{\n  {KV}\n  string b = 3 [(prism.searchable) = true];\n}}",
        [("SCHEMA_INVALID", "8:3")],
    ),
    (
        "reserved_words",
        f"message M {{\n  {KV}\n  string order = 2;\n  string status = 3;\n}}",
        [("LINT_RESERVED_WORD", "8:3")],
    ),
    (
        "namespace_reserved",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.namespace) = "sqlite_users";\n'
        "  string id = 1 [(prism.key) = true];\n}",
        [("LINT_NAMESPACE_RESERVED", "5:1")],
    ),
    (
        "compiler_error_is_schema_invalid",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  string id = 1;\n}',
        [("SCHEMA_INVALID", "5:1")],
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_lint_findings(tmp_path: Path, name: str, body: str, expected: list[tuple[str, str]]) -> None:
    run = prism("check", write_schema(tmp_path / "proto", body), "--format", "json")
    assert run.findings() == [(rule, f"acme/app/v1/app.proto:{at}") for rule, at in expected]
    assert run.returncode == (1 if expected else 0), run.stderr


def test_text_and_github_formats(tmp_path: Path) -> None:
    root = write_schema(
        tmp_path / "proto", f'message M {{\n  {KV}\n  string mail = 2 [(prism.pii) = "email"];\n}}'
    )
    text = prism("check", root)
    assert text.returncode == 1
    assert text.stdout.startswith(
        "acme/app/v1/app.proto:8:3: LINT_PII_PLAINTEXT: acme.app.v1.M.mail: pii email "
    )
    github = prism("check", "proto", "--format", "github", cwd=tmp_path)
    assert github.stdout.startswith(
        "::error file=proto/acme/app/v1/app.proto,line=8,col=3,title=LINT_PII_PLAINTEXT::acme.app.v1.M.mail: "
    )


def test_config_sets_severity_and_ignores_paths(tmp_path: Path) -> None:
    root = write_schema(
        tmp_path / "proto",
        f'message M {{\n  {KV}\n  string mail = 2 [(prism.pii) = "email"];\n  string order = 3;\n}}',
    )
    (tmp_path / "prism-check.yaml").write_text(
        "severity:\n  LINT_RESERVED_WORD: warning\nignore:\n  LINT_PII_PLAINTEXT: [acme/app/]\n"
    )
    run = prism("check", "proto", "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [(f["rule"], f["severity"]) for f in json.loads(run.stdout)] == [("LINT_RESERVED_WORD", "warning")]
    (tmp_path / "prism-check.yaml").unlink()
    (tmp_path / "prism.yaml").write_text(
        "namespaces: {}\nchecks:\n  severity:\n    LINT_PII_PLAINTEXT: 'off'\n"
    )
    assert prism("check", root, "--format", "json", cwd=tmp_path).rules() == ["LINT_RESERVED_WORD"]
    # The runtime reads the same prism.yaml and leaves the checks' section alone.
    assert load_runtime_config(None, tmp_path / "prism.yaml").bindings == {}
    assert root.exists()


def test_config_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "prism-check.yaml"
    path.write_text("severity:\n  LINT_PII_PLAINTXT: warning\n")
    with pytest.raises(ConfigError) as error:
        load_check_config(path)
    assert str(error.value).startswith(f"{path}:2:3: unknown rule 'LINT_PII_PLAINTXT'; allowed: ")
    assert str(error.value).endswith("did you mean 'LINT_PII_PLAINTEXT'?")
    path.write_text("severity:\n  LINT_PII_PLAINTEXT: fatal\n")
    with pytest.raises(
        ConfigError, match=r":2:23: severity of LINT_PII_PLAINTEXT is 'fatal'; allowed: error, warning, off"
    ):
        load_check_config(path)
    path.write_text("severity:\n  SCHEMA_INVALID: warning\n")
    with pytest.raises(ConfigError, match=r":2:3: SCHEMA_INVALID is always an error; fix the schema"):
        load_check_config(path)
    path.write_text("severity:\n  LINT_PII_PLAINTEXT: fatal\n")
    bad = prism("check", EXAMPLES, "--config", path)
    assert bad.returncode == 2 and "severity of LINT_PII_PLAINTEXT is 'fatal'" in bad.stderr


def test_protoc_errors_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "bad.proto").write_text('syntax = "proto3";\nmessage M { strin id = 1; }\n')
    run = prism("check", tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("prism check: ") and 'bad.proto:2:13: "strin" is not defined.' in run.stderr


def test_root_of_repo_proto_dir_is_clean() -> None:
    assert prism("check", ROOT / "proto").returncode == 0


def test_namespace_collision_across_files_is_schema_invalid(tmp_path: Path) -> None:
    one = 'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.namespace) = "shared";\n  string id = 1 [(prism.key) = true];\n}'
    write_schema(tmp_path, one, name="acme/a/v1/a.proto", package="acme.a.v1")
    write_schema(tmp_path, one, name="acme/b/v1/b.proto", package="acme.b.v1")
    run = prism("check", tmp_path, "--format", "json")
    assert run.returncode == 1
    assert run.findings() == [("SCHEMA_INVALID", "acme/b/v1/b.proto:5:1")]
    assert "namespace 'shared' is already used by acme.a.v1.M" in json.loads(run.stdout)[0]["message"]


def test_github_annotations_escape_what_github_would_misread() -> None:
    finding = Finding(Location("a,b:c.proto", 3, 4), "LINT_PII_PLAINTEXT", "100% plain\nsecond line")
    assert render([finding], Format.GITHUB, "proto") == (
        "::error file=proto/a%2Cb%3Ac.proto,line=3,col=4,title=LINT_PII_PLAINTEXT::100%25 plain%0Asecond line"
    )
    warning = Finding(Location("x.proto"), "LINT_PII_KEY", "m", Severity.WARNING)
    assert render([warning], Format.GITHUB) == "::warning file=x.proto,title=LINT_PII_KEY::m"
    assert render([warning], Format.TEXT) == "x.proto: LINT_PII_KEY: m (warning)"
