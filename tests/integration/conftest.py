"""Integration fixtures: a real Kannel in front of a fake operator.

Scopes: one fake operator and one Kannel per test module (starting Kannel takes about a
second); the function-scoped `fake_operator` and `kannel` fixtures hand them to each test
in a known state: the operator emptied and accepting everything, Kannel running (a test
may stop or restart it; the next test gets it started again). `kannel_factory` builds
extra stacks, e.g. with our MO webhook as `get-url`, stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers.kannel import BEARERBOX, SMSBOX, KannelStack, kannel_installed
from tests.servers.operator import FakeOperator

_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_failed] = True
    return report


def _require_kannel() -> None:
    # Fail, not skip: CI always installs Kannel, so its absence is a broken setup.
    if not kannel_installed():
        pytest.fail(
            f"Kannel is not installed ({BEARERBOX} / {SMSBOX} missing): "
            "run `make system-deps` (scripts/install-system-deps.sh) first",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def _operator_server() -> Iterator[FakeOperator]:
    with FakeOperator() as operator:
        yield operator


@pytest.fixture
def fake_operator(_operator_server: FakeOperator) -> FakeOperator:
    """The fake SMSC behind Kannel, emptied and set to accept at once for this test."""
    _operator_server.reset()
    return _operator_server


@pytest.fixture(scope="module")
def _kannel_stack(_operator_server: FakeOperator) -> Iterator[KannelStack]:
    _require_kannel()
    stack = KannelStack(_operator_server)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def kannel(
    request: pytest.FixtureRequest, _kannel_stack: KannelStack, fake_operator: FakeOperator
) -> Iterator[KannelStack]:
    """A running Kannel (no MO webhook) delivering to `fake_operator`."""
    if not _kannel_stack.running:
        _kannel_stack.start()
    yield _kannel_stack
    if request.node.stash.get(_failed, False) or not _kannel_stack.running:
        # A box that died during the test (smsbox 1.4.5 panics when a webhook it calls
        # resets the connection) is restarted for the next one; its logs say why.
        print(f"\n=== Kannel logs ({_kannel_stack.dir}) ===\n{_kannel_stack.logs_tail(40)}")


@pytest.fixture
def kannel_factory(
    request: pytest.FixtureRequest, fake_operator: FakeOperator
) -> Iterator[Callable[..., KannelStack]]:
    """Start another Kannel: `kannel_factory(mo_url="http://127.0.0.1:P/webhooks/kannel/mo?
    token=T")`; keyword arguments go to KannelStack. Stopped after the test."""
    _require_kannel()
    stacks: list[KannelStack] = []

    def make(mo_url: str | None = None, **kwargs: Any) -> KannelStack:
        stack = KannelStack(kwargs.pop("operator", fake_operator), mo_url, **kwargs)
        stacks.append(stack)
        return stack.start()

    try:
        yield make
    finally:
        failed = request.node.stash.get(_failed, False)
        for stack in stacks:
            if failed:
                print(f"\n=== Kannel logs ({stack.dir}) ===\n{stack.logs_tail(40)}")
            stack.close()
