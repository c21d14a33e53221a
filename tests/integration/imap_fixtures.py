"""A real Dovecot for the IMAP tests: import ``dovecot`` into a test module to use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.dovecot import DovecotServer, dovecot_installed

#: The watched mailbox's login and password.
MAILBOX_USER = "sms-inbox@example.com"
MAILBOX_PASSWORD = "imap-secret"


@pytest.fixture
def dovecot(request: pytest.FixtureRequest) -> Iterator[DovecotServer]:
    """A private Dovecot with one mailbox, ``MAILBOX_USER``, stopped after the test.

    Parametrise it indirectly with a dict of ``DovecotServer`` keyword arguments
    (``{"capability": "IMAP4rev1"}``) to change the server.
    """
    # Fail, not skip: CI always installs Dovecot, so its absence is a broken setup.
    if not dovecot_installed():
        pytest.fail("Dovecot is not installed (/usr/sbin/dovecot missing): "
                    "run `make system-deps` (scripts/install-system-deps.sh) first",
                    pytrace=False)
    server = DovecotServer({MAILBOX_USER: MAILBOX_PASSWORD}, **getattr(request, "param", {}))
    try:
        server.start()
        yield server
    finally:
        server.stop()
