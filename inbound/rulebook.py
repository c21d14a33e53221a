"""The rules in force: loaded from ``config.rules`` at start, swappable by ``reload()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from autoresponder.loader import RulesError, load_rules
from autoresponder.rules import RuleSet

log = logging.getLogger("mail2sms.inbound")


class Rulebook:
    """Holds the current RuleSet. The pipeline calls the object to get it, so a reload
    (file change, SIGHUP) takes effect from the next SMS on."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.current = RuleSet()

    def __call__(self) -> RuleSet:
        return self.current

    def load(self) -> RuleSet:
        """First load. A missing file gives the defaults (STOP, START, HELP words) and a
        warning; an invalid one raises RulesError listing every problem."""
        if self.path is None:
            log.info("no rules file configured: opt-out, opt-in and help words only")
        elif not self.path.exists():
            log.warning("rules file %s not found: opt-out, opt-in and help words only",
                        self.path)
        else:
            self.current = load_rules(self.path)
            log.info("rules loaded from %s: %d rule(s), %d survey(s)", self.path,
                     len(self.current.rules), len(self.current.surveys))
        return self.current

    def reload(self) -> bool:
        """Read the file again; on any problem keep the rules in force and log why.
        True when the new rules are in force."""
        if self.path is None:
            return False
        try:
            ruleset = load_rules(self.path)
        except RulesError as exc:  # a missing or unreadable file is one of these too
            log.error("rules file %s not reloaded, the previous rules stay in force:\n%s",
                      self.path, exc)
            return False
        self.current = ruleset
        log.info("rules reloaded from %s: %d rule(s), %d survey(s)", self.path,
                 len(ruleset.rules), len(ruleset.surveys))
        return True

    def _stamp(self) -> tuple[float, int] | None:
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime, stat.st_size

    async def watch(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Reload whenever the file changes (checked every ``interval`` seconds) until
        ``stop`` is set. Polling, not inotify: it also sees a file replaced by an editor's
        rename or on a network share."""
        seen = self._stamp()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            stamp = self._stamp()
            if stamp is not None and stamp != seen:
                seen = stamp
                self.reload()
