"""The one Jinja2 sandbox every SMS text goes through: the text is data, never code."""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.nodes import Template as TemplateNode
from jinja2.sandbox import SandboxedEnvironment

#: No SMS text comes near this; anything larger is a template trying to eat memory.
MAX_OUTPUT = 10_000


class TemplateProblem(ValueError):
    """A text that cannot be rendered; ``kind`` says whether it is the writer's fault
    (``syntax``, ``unsafe``) or the contact's (``missing``)."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


class _SmsSandbox(SandboxedEnvironment):
    # '*' and '**' are intercepted because '{{ "x" * 10**9 }}' is legal Jinja2 and
    # would allocate a gigabyte inside an otherwise safe sandbox.
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list) and isinstance(times, int):
                if len(seq) * times > MAX_OUTPUT:
                    raise SecurityError("repetition too large")
        return operator.mul(left, right)


_ENV = _SmsSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def has_fields(text: str) -> bool:
    """True when the text holds template syntax and must be rendered per recipient."""
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=256)
def _compile(text: str) -> Any:
    try:
        return _ENV.from_string(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            "syntax", f"template error on line {exc.lineno} of the text: {exc.message}"
        ) from exc


def check(text: str) -> None:
    """Raise TemplateProblem('syntax') when the text is not a valid template."""
    if has_fields(text):
        _compile(text)


def fields_used(text: str) -> set[str]:
    """Names of the fields a text refers to (``first_name`` ...)."""
    if not has_fields(text):
        return set()
    from jinja2 import meta

    try:
        ast: TemplateNode = _ENV.parse(text)
    except TemplateSyntaxError:
        return set()
    return set(meta.find_undeclared_variables(ast))


def render(text: str, fields: dict[str, Any]) -> str:
    """Fill the text's fields from ``fields`` in the sandbox."""
    if not has_fields(text):
        return text
    template = _compile(text)
    try:
        out = template.render(**fields)
    except SecurityError as exc:
        raise TemplateProblem("unsafe", f"the text uses a template expression that is not "
                              f"allowed ({exc})") from exc
    except UndefinedError as exc:
        raise TemplateProblem("missing", f"no value for a field: {exc.message}") from exc
    except Exception as exc:  # any runtime error inside the template is the writer's
        raise TemplateProblem("unsafe", f"the text's template failed: {exc}") from exc
    if len(out) > MAX_OUTPUT:
        raise TemplateProblem("unsafe", "the text's template produces too much text")
    return out
