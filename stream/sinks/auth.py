"""Who may read and act through the API and the page: bearer tokens, and browser sessions.

Tokens come from ``CHURNWATCH_API_TOKEN`` (named ``api``) and/or ``CHURNWATCH_API_TOKENS_FILE``,
a file of ``name token`` lines (``#`` starts a comment), so each action records who took it by
name. With a token configured every route but ``/healthz`` and the sign-in page needs one;
without any, reads stay open (as before) and every write is refused: an unauthenticated write
would record actions nobody can be held to.

* **Comparison** is of SHA-256 digests with :func:`hmac.compare_digest`, against every
  configured token without stopping at a match, so timing says nothing about which or how
  much of a token matched. Only digests are kept in memory after start-up.
* **Answers:** no credentials is a 401 with ``WWW-Authenticate: Bearer`` (a page sends the
  browser to the sign-in page instead); a token that matches none is a 403.
* **Browsers** cannot send a bearer header from a plain form, so ``/login`` exchanges a token
  for a session cookie: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came over
  HTTPS (directly or as ``X-Forwarded-Proto: https`` from the TLS proxy), signed with a key
  derived from the configured tokens (every API process with the same tokens accepts it;
  changing the tokens signs everyone out) and bound to its token, so removing a token ends
  its sessions.
* **Cross-site requests:** a write made with the cookie must carry the session's CSRF token
  (a hidden form field, or the ``X-CSRF-Token`` header), and a browser's ``Origin`` header,
  when sent, must be this host. A bearer request needs neither: a browser never adds that
  header by itself.
* **Secrets** never reach a log line, an error message or ``/metrics``: errors about the
  tokens file name the line, not its content, and the token is never taken from a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

COOKIE = "churnwatch_session"
SESSION_SECONDS = 12 * 3600
MIN_TOKEN = 16
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")


class TokenConfigError(ValueError):
    """Tokens that cannot be used; the message names the variable or line, never a token."""


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _token(name: str, token: str, where: str) -> Token:
    if not _NAME.match(name):
        raise TokenConfigError(f"{where}: a token's name must be 1 to 64 letters, digits or _.@-")
    if len(token) < MIN_TOKEN or not _TOKEN.match(token):
        raise TokenConfigError(
            f"{where}: a token must be at least {MIN_TOKEN} printable characters without spaces "
            "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return Token(name, _digest(token))


def load_tokens(environ: Mapping[str, str] | None = None) -> tuple[Token, ...]:
    """The configured tokens (none: writes off, reads open). Raises :class:`TokenConfigError`."""
    env = os.environ if environ is None else environ
    tokens: list[Token] = []
    single = env.get("CHURNWATCH_API_TOKEN", "")
    if single:
        tokens.append(_token("api", single, "CHURNWATCH_API_TOKEN"))
    path = env.get("CHURNWATCH_API_TOKENS_FILE", "")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenConfigError(
                f"CHURNWATCH_API_TOKENS_FILE: cannot read {path}: {type(exc).__name__}"
            ) from None
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            where = f"{path}, line {number}"
            if len(parts) != 2:
                raise TokenConfigError(f"{where}: expected 'name token' (two words)")
            tokens.append(_token(parts[0], parts[1], where))
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise TokenConfigError("two tokens share a name: each name must say who acted")
    if len({t.digest for t in tokens}) != len(tokens):
        raise TokenConfigError("the same token is configured twice")
    return tuple(tokens)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Auth:
    """Checks credentials against the configured tokens; see the module's notes."""

    def __init__(self, tokens: tuple[Token, ...] = ()) -> None:
        self.tokens = tokens
        material = b"".join(sorted(t.digest for t in tokens))
        self._key = hmac.new(material, b"churnwatch-session-v1", hashlib.sha256).digest()

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def name_of(self, token: str) -> str | None:
        """The token's name, or None; compares with every token, in constant time each."""
        given = _digest(token)
        found = None
        for candidate in self.tokens:
            if hmac.compare_digest(given, candidate.digest):
                found = candidate.name
        return found

    def _fingerprint(self, name: str) -> str:
        digest = next((t.digest for t in self.tokens if t.name == name), b"")
        return _b64(hmac.new(self._key, b"fp" + digest, hashlib.sha256).digest()[:12])

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def session(self, name: str, now: float | None = None) -> str:
        """A cookie value for ``name``'s session, valid for :data:`SESSION_SECONDS`."""
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        payload = f"{name}|{expires}|{self._fingerprint(name)}"
        return f"{_b64(payload.encode())}.{self._sign(payload)}"

    def session_name(self, cookie: str | None, now: float | None = None) -> str | None:
        """Who the cookie is a session of, or None (absent, forged, expired, token removed)."""
        if not cookie or not self.enabled or len(cookie) > 512 or "." not in cookie:
            return None
        encoded, signature = cookie.rsplit(".", 1)
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        name, _, rest = payload.partition("|")
        expires, _, fingerprint = rest.partition("|")
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        if not hmac.compare_digest(fingerprint, self._fingerprint(name)):
            return None  # the token was removed or changed since
        return name

    def csrf(self, cookie: str) -> str:
        """The CSRF token of a session: forms carry it, a cross-site page cannot read it."""
        return self._sign("csrf|" + cookie)[:32]

    def csrf_ok(self, cookie: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf(cookie), given)
