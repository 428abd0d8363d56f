"""Compile a jinja2 template into a plain Python module that renders it without importing jinja2.

jinja2's own compilation of a template still runs on jinja2's runtime, and importing any part of jinja2
imports all of it: about 25 ms of every plugin process, more than the rest of the compiler's imports. This
writes the template's syntax tree, as jinja2 parses it (trim_blocks and lstrip_blocks already applied), as
one function `render(**context) -> str` over ordinary Python values. It covers the subset of the language
the shipped templates use and refuses anything else, naming the construct, so that a template which grows
past it fails when it is compiled (scripts/gen_templates.py), not when it renders. Differences from
jinja2's runtime, on purpose: `a.b` is the attribute only (jinja2 falls back to `a["b"]`), and a missing
context variable is an error when render() is called (StrictUndefined raises only when it is reached).
"""

from __future__ import annotations

import keyword
from collections.abc import Iterator

from jinja2 import Environment, meta, nodes

_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "lteq": "<=", "gt": ">", "gteq": ">=", "in": "in"}
_RESERVED = {"str", "render"}
"""Names the written module uses itself, which a template variable must not shadow."""


class UnsupportedTemplate(Exception):
    """The template uses a construct this compiler does not translate."""


def compile_template(env: Environment, source: str, name: str) -> str:
    """Return the source of the functions that render template `name` (text `source`) as `env` would."""
    tree = env.parse(source, name)
    context = sorted(meta.find_undeclared_variables(tree))
    for variable in context:
        _check_name(variable)
    writer = _Writer()
    writer.line(f"def render(*, {', '.join(context)}):" if context else "def render():")
    writer.function_body(tree.body)
    return writer.text()


def _check_name(name: str) -> None:
    if name.startswith("_") or name in _RESERVED or keyword.iskeyword(name):
        raise UnsupportedTemplate(f"variable {name!r}: a name this compilation reserves or cannot write")


class _Writer:
    """Python source written line by line; each function collects its output in a list named by depth."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._indent = 0
        self._functions = 0  # nesting depth of functions: each has its own output list
        self._loops: list[str] = []  # the index variable of each enclosing loop that reads `loop`

    def text(self) -> str:
        """Return the module source written so far."""
        return "".join(f"{line}\n" for line in self._lines)

    def line(self, text: str) -> None:
        """Write one line at the current indentation."""
        self._lines.append("    " * self._indent + text)

    def function_body(self, body: list[nodes.Node]) -> None:
        """Write the body of a function that returns what `body` outputs, joined."""
        self._indent += 1
        self._functions += 1
        out = self._out
        self.line(f"{out} = []")
        self.statements(body)
        self.line(f'return "".join({out})')
        self._functions -= 1
        self._indent -= 1

    @property
    def _out(self) -> str:
        return f"_out{self._functions}"

    def statements(self, body: list[nodes.Node]) -> None:
        """Write each statement of `body`."""
        for node in body:
            self.statement(node)

    def block(self, body: list[nodes.Node]) -> None:
        """Write `body` one level deeper (`pass` if it writes nothing)."""
        self._indent += 1
        length = len(self._lines)
        self.statements(body)
        if len(self._lines) == length:
            self.line("pass")
        self._indent -= 1

    def statement(self, node: nodes.Node) -> None:
        """Write one template statement."""
        if isinstance(node, nodes.Output):
            for part in node.nodes:
                text = repr(part.data) if isinstance(part, nodes.TemplateData) else f"str({self.expr(part)})"
                self.line(f"{self._out}.append({text})")
        elif isinstance(node, nodes.If):
            self.line(f"if {self.expr(node.test)}:")
            self.block(node.body)
            for branch in node.elif_:
                self.line(f"elif {self.expr(branch.test)}:")
                self.block(branch.body)
            if node.else_:
                self.line("else:")
                self.block(node.else_)
        elif isinstance(node, nodes.For):
            self._for(node)
        elif isinstance(node, nodes.Assign):
            self.line(f"{self.target(node.target)} = {self.expr(node.node)}")
        elif isinstance(node, nodes.Macro):
            if node.defaults:
                raise UnsupportedTemplate(f"line {node.lineno}: macro {node.name} has default arguments")
            for argument in node.args:
                _check_name(argument.name)
            self.line(f"def {node.name}({', '.join(a.name for a in node.args)}):")
            self.function_body(node.body)
        else:
            raise UnsupportedTemplate(f"line {node.lineno}: {type(node).__name__} is not compiled to Python")

    def _for(self, node: nodes.For) -> None:
        if node.else_ or node.test is not None or node.recursive:
            raise UnsupportedTemplate(f"line {node.lineno}: a for loop with else, if or recursive")
        reads_loop = any(n.name == "loop" for n in node.find_all(nodes.Name))
        target, items = self.target(node.target), self.expr(node.iter)
        if reads_loop:
            index = f"_index{len(self._loops)}"
            self.line(f"for {index}, {target} in enumerate({items}):")
            self._loops.append(index)
        else:
            self.line(f"for {target} in {items}:")
        self.block(node.body)
        if reads_loop:
            self._loops.pop()

    def target(self, node: nodes.Node) -> str:
        """Return the Python target a for loop or set assigns to."""
        if isinstance(node, nodes.Name):
            _check_name(node.name)
            return node.name
        if isinstance(node, nodes.Tuple):
            return ", ".join(self.target(item) for item in node.items)
        raise UnsupportedTemplate(f"line {node.lineno}: cannot assign to {type(node).__name__}")

    def expr(self, node: nodes.Node) -> str:
        """Return `node` as a parenthesised Python expression."""
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == "loop":
            if node.attr != "first" or not self._loops:
                raise UnsupportedTemplate(f"line {node.lineno}: loop.{node.attr} (only loop.first is)")
            return f"({self._loops[-1]} == 0)"
        if isinstance(node, nodes.Name):
            return node.name
        if isinstance(node, nodes.Const):
            return repr(node.value)
        if isinstance(node, nodes.Getattr):
            return f"{self.expr(node.node)}.{node.attr}"
        if isinstance(node, nodes.Getitem):
            return f"{self.expr(node.node)}[{self.expr(node.arg)}]"
        if isinstance(node, nodes.Not):
            return f"(not {self.expr(node.node)})"
        if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
            return f"({self.expr(node.expr1)} if {self.expr(node.test)} else {self.expr(node.expr2)})"
        if isinstance(node, nodes.Compare) and all(op.op in _COMPARISONS for op in node.ops):
            return "(" + " ".join([self.expr(node.expr), *self._operands(node.ops)]) + ")"
        if isinstance(node, nodes.Call) and not (node.dyn_args or node.dyn_kwargs):
            arguments = [self.expr(a) for a in node.args] + [
                f"{k.key}={self.expr(k.value)}" for k in node.kwargs
            ]
            return f"{self.expr(node.node)}({', '.join(arguments)})"
        raise UnsupportedTemplate(f"line {node.lineno}: {type(node).__name__} is not compiled to Python")

    def _operands(self, operands: list[nodes.Operand]) -> Iterator[str]:
        for operand in operands:
            yield _COMPARISONS[operand.op]
            yield self.expr(operand.expr)
