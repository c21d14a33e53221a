"""Typed reading of the rules file's values, collecting every problem with its line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from jinja2 import Environment, nodes

from autoresponder.problems import RuleProblem
from autoresponder.render import TemplateProblem, check, fields_used
from autoresponder.yamlfile import Lines, Path, where

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Only for finding the attributes a template reads from ``match``; never renders.
_PARSER = Environment()


def parse_duration(value: Any) -> timedelta | None:
    """``30m``, ``24h``, ``2d``, ``90s`` or a number of seconds; None when not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return timedelta(seconds=value) if value > 0 else None
    found = _DURATION.match(value) if isinstance(value, str) else None
    if not found or int(found.group(1)) == 0:
        return None
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def _match_attributes(text: str) -> set[str]:
    """Names read as ``match.name`` or ``match['name']`` in a template."""
    try:
        tree = _PARSER.parse(text)
    except Exception:  # syntax errors are reported by render.check
        return set()
    names: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "match":
            if isinstance(node, nodes.Getattr):
                names.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                names.add(node.arg.value)
    return names


class Collector:
    """Reads values out of the parsed YAML; each bad one becomes a RuleProblem."""

    def __init__(self, file: str, lines: Lines):
        self.file = file
        self.lines = lines
        self.problems: list[RuleProblem] = []

    def add(self, path: Path, message: str, *, line: int | None = None, key: bool = False) -> None:
        if line is None:
            line = self.lines.of_key(path) if key else self.lines.of(path)
        self.problems.append(RuleProblem(self.file, line, where(path), message))

    def mapping(self, value: Any, path: Path, known: Sequence[str]) -> dict[str, Any] | None:
        """The value as a mapping, with one problem per unknown key."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping with keys {', '.join(known)}")
            return None
        for key in value:
            if key not in known:
                self.add((*path, str(key)), f"unknown key {key!r} (known keys: "
                         f"{', '.join(known)})", key=True)
        return value

    def text(self, data: dict[str, Any], key: str, path: Path, *,
             required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(path, f"{key!r} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add((*path, key), f"expected a text, got {type(value).__name__}")
            return None
        return str(value)

    def texts(self, data: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
        """A text or a list of texts."""
        value = data.get(key)
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        out: list[str] = []
        for number, item in enumerate(items):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                where_ = (*path, key, number) if isinstance(value, list) else (*path, key)
                self.add(where_, f"expected a text or a list of texts, got {item!r}")
            else:
                out.append(str(item))
        return tuple(out)

    def integer(self, data: dict[str, Any], key: str, path: Path) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add((*path, key), f"expected a whole number, got {value!r}")
            return None
        return value

    def boolean(self, data: dict[str, Any], key: str, path: Path, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.add((*path, key), f"expected true or false, got {value!r}")
            return default
        return value

    def template(self, text: str | None, path: Path, roots: Iterable[str],
                 groups: set[str] | None = None) -> None:
        """Report a syntax error, a variable outside *roots*, and ``match.x`` that is
        not one of *groups* (the regex's named groups; None: no check)."""
        if text is None:
            return
        allowed = list(roots)
        try:
            check(text)
        except TemplateProblem as exc:
            self.add(path, f"{exc} (expected a Jinja2 template such as "
                     "'Bonjour {{ contact.first_name }}')", line=self._text_line(path, exc))
            return
        for name in sorted(fields_used(text) - set(allowed)):
            self.add(path, f"undefined template variable {name!r} (this text may use: "
                     f"{', '.join(allowed)})")
        if groups is not None and "match" in allowed:
            for name in sorted(_match_attributes(text) - groups):
                known = ", ".join(sorted(groups)) or "none, the rule has no regex groups"
                self.add(path, f"match.{name} is not a named group of the rule's regex "
                         f"(named groups: {known})")

    def _text_line(self, path: Path, exc: TemplateProblem) -> int | None:
        line = self.lines.of(path)
        found = re.search(r"on line (\d+)", str(exc))
        if line is not None and found and path in self.lines.blocks:
            return line + int(found.group(1))
        return line
