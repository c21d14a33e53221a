"""A problem found in a YAML file, with file:line: the rules file's, and the config's
(``mail2sms.config`` uses the same class)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileProblem:
    file: str
    line: int | None
    where: str  # dotted key path: keywords.2.reply
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        where = f" {self.where}:" if self.where else ""
        return f"{place}:{where} {self.message}"


RuleProblem = FileProblem


class RulesError(Exception):
    """Every problem of a rules file at once, in file order."""

    def __init__(self, problems: list[RuleProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
