"""When AUTH needs TLS, and the login cache and throttling of the authenticator."""

from __future__ import annotations

from mail2sms.auth import Authenticator, AuthOutcome, hash_password
from mail2sms.config import UserConfig
from mail2sms.smtp import auth_needs_tls, smtp_reply


def test_auth_needs_tls_except_on_loopback() -> None:
    assert auth_needs_tls("192.0.2.10", require_tls=False)
    assert auth_needs_tls("2001:db8::1", require_tls=False)
    assert auth_needs_tls(None, require_tls=False)
    assert not auth_needs_tls("127.0.0.1", require_tls=False)
    assert not auth_needs_tls("127.0.0.2", require_tls=False)
    assert not auth_needs_tls("::1", require_tls=False)
    assert auth_needs_tls("127.0.0.1", require_tls=True)


def test_smtp_reply_is_one_short_line() -> None:
    line = smtp_reply(550, "5.7.0", "bad\r\nthing " + "x" * 1000)
    assert "\n" not in line and "\r" not in line
    assert line.startswith("550 5.7.0 bad thing")
    assert len(line) < 420


def _auth(**kw: float) -> Authenticator:
    user = UserConfig(email="alice@example.com", password_hash=hash_password("right"))
    return Authenticator([user], failure_delay=0.0, **kw)


async def test_good_login_is_cached_and_a_wrong_one_is_not() -> None:
    auth = _auth()
    assert (await auth.check("127.0.0.1", b"Alice@Example.com", b"right"))[0] == AuthOutcome.OK
    # Break the stored hash: a login that still succeeds never reached argon2.
    auth._users["alice@example.com"] = UserConfig(
        email="alice@example.com", password_hash="$argon2id$broken")
    assert (await auth.check("127.0.0.1", b"alice@example.com", b"right"))[0] == AuthOutcome.OK
    # a wrong password is never answered from the cache
    assert (await auth.check("127.0.0.1", b"alice@example.com", b"wrong"))[0] == AuthOutcome.BAD


async def test_failures_throttle_per_address_and_per_user() -> None:
    auth = _auth(max_failures=2, window=60)
    for _ in range(2):
        assert (await auth.check("10.0.0.1", b"alice@example.com", b"x"))[0] == AuthOutcome.BAD
    # the user is now throttled from any address, even with the right password
    outcome, _ = await auth.check("10.0.0.2", b"alice@example.com", b"right")
    assert outcome == AuthOutcome.THROTTLED
    # and the address is throttled for any user
    outcome, _ = await auth.check("10.0.0.1", b"bob@example.com", b"x")
    assert outcome == AuthOutcome.THROTTLED
    # another address and user are not affected
    outcome, _ = await auth.check("10.0.0.3", b"carol@example.com", b"x")
    assert outcome == AuthOutcome.BAD


async def test_unknown_user_and_junk_never_raise() -> None:
    auth = _auth()
    for login, password in ((b"", b""), (b"\xff\xfe", b"\x00" * 1000), (b"nobody", b"pw")):
        outcome, _ = await auth.check("127.0.0.1", login, password)
        assert outcome in (AuthOutcome.BAD, AuthOutcome.THROTTLED)
