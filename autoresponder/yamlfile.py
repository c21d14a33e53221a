"""Read YAML keeping the line of every key and value, for file:line problems."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from autoresponder.problems import RuleProblem, RulesError

Path = tuple[str | int, ...]

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and integers.

    Keywords like YES, NO, ON, OFF stay words, and numbers like 0612345670 stay text
    instead of turning into True or an octal integer."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))


@dataclass
class Lines:
    """Line numbers (1-based) by key path; ``keys`` holds where each key is written."""

    values: dict[Path, int] = field(default_factory=dict)
    keys: dict[Path, int] = field(default_factory=dict)
    blocks: set[Path] = field(default_factory=set)  # literal/folded scalars: text starts below

    def of(self, path: Path) -> int | None:
        """The line of the value at *path*, or of its nearest enclosing one."""
        for end in range(len(path), -1, -1):
            line = self.values.get(path[:end])
            if line is not None:
                return line
        return None

    def of_key(self, path: Path) -> int | None:
        return self.keys.get(path) or self.of(path)


def _index(
    node: yaml.Node, path: Path, lines: Lines, duplicates: list[tuple[Path, int, int]],
    seen: set[int],
) -> None:
    lines.values[path] = node.start_mark.line + 1
    # An alias reuses its anchor's node: walking it again could be exponential (nested
    # aliases) or endless (a node that contains itself).
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        lines.blocks.add(path)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark)
            child = (*path, name)
            if child in lines.keys:
                duplicates.append((child, lines.keys[child], key.start_mark.line + 1))
                continue
            lines.keys[child] = key.start_mark.line + 1
            _index(value, child, lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for number, item in enumerate(node.value):
            _index(item, (*path, number), lines, duplicates, seen)


def where(path: Path) -> str:
    return ".".join(str(p) for p in path)


def _error_line(exc: yaml.YAMLError, text: str) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML refuses
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else None


def _error_text(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.character:#x} is not allowed in YAML"
    return getattr(exc, "problem", None) or str(exc)


def read_yaml(text: str, file: str) -> tuple[Any, Lines, list[RuleProblem]]:
    """Parse *text*; raise RulesError on a syntax error (with its line).

    Returns the data, its line index and the problems YAML itself lets through
    (a key given twice in one mapping)."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise RulesError([RuleProblem(file, _error_line(exc, text), "",
                                      f"YAML syntax: {_error_text(exc)}")]) from exc
    finally:
        if loader is not None:
            loader.dispose()
    lines = Lines()
    duplicates: list[tuple[Path, int, int]] = []
    if node is not None:
        _index(node, (), lines, duplicates, set())
    problems = [
        RuleProblem(file, again, where(path), f"key given twice (first on line {first}); "
                    "the last one would win")
        for path, first, again in duplicates
    ]
    return data, lines, problems
