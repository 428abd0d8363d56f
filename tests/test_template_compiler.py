"""The plain-Python compilation of a template renders what jinja2 renders, and refuses what it cannot write."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from protoc_gen_prism.template_compiler import UnsupportedTemplate, compile_template
from protoc_gen_prism.templating import environment

# Every construct the compiler translates, with the whitespace control the client template relies on.
EVERY_CONSTRUCT = """\
{% macro row(item, style) %}
{% set mark = "*" if style == "star" else "-" %}
{{ mark }} {{ item.name }}{% if item.tags %} [{{ item.tags[0] }}]{% endif %}
{%- endmacro %}
{% for item in items %}
{% if not loop.first %}

{% endif %}
{{ row(item, style) }}
{% for key, value in item.pairs %}
  {{ key }}={{ value }}{% if value in limits %} (a limit){% elif value != 0 %} (set){% else %} (zero){% endif %}

{% endfor %}
{% endfor %}
{{ shout(title) }}
"""


def compiled(source: str) -> Callable[..., str]:
    """Return the render() the compiler writes for `source`."""
    namespace: dict[str, object] = {}
    exec(compile_template(environment(), source, "test.jinja"), namespace)
    render = namespace["render"]
    assert callable(render)
    return render


def test_every_construct_renders_as_jinja2_renders_it() -> None:
    context = {
        "items": [
            SimpleNamespace(name="a", tags=["x", "y"], pairs=[("n", 1), ("m", 0)]),
            SimpleNamespace(name="b", tags=[], pairs=[("k", 7)]),
        ],
        "style": "star",
        "limits": [7],
        "title": "end",
        "shout": str.upper,
    }
    expected = environment().from_string(EVERY_CONSTRUCT).render(**context)
    assert compiled(EVERY_CONSTRUCT)(**context) == expected
    assert expected == "* a [x]\n  n=1 (set)\n  m=0 (zero)\n\n* b\n  k=7 (a limit)\nEND\n"


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("{{ name|upper }}", "Filter"),
        ("{% for x in xs %}{{ loop.index }}{% endfor %}", "loop.index"),
        ("{% for x in xs if x %}{{ x }}{% endfor %}", "for loop"),
        ("{% macro m(a=1) %}{{ a }}{% endmacro %}", "default arguments"),
        ("{{ str }}", "'str'"),
        ("{{ _private }}", "'_private'"),
        ("{% include 'other.jinja' %}", "Include"),
    ],
)
def test_a_construct_it_does_not_translate_is_an_error_naming_it(source: str, named: str) -> None:
    with pytest.raises(UnsupportedTemplate, match=named):
        compile_template(environment(), source, "test.jinja")


def test_a_missing_variable_is_an_error_when_render_is_called() -> None:
    with pytest.raises(TypeError, match="title"):
        compiled("{{ title }}")()
