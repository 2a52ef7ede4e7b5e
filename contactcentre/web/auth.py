"""Login sessions: a signed cookie, checked on every route and socket.io connect.

The cookie holds `user id | role | expiry`, signed with HMAC-SHA256 under
web.session_secret. Several nodes sharing one secret accept each other's
cookies; no session store is needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie

from contactcentre.crm.models import Role

COOKIE = "cc_session"


@dataclass(frozen=True)
class Identity:
    user_id: int
    role: Role
    expires: int


class SessionSigner:
    def __init__(self, secret: str, max_age: int):
        self._key = hashlib.sha256(secret.encode()).digest()
        self.max_age = max_age

    def issue(self, user_id: int, role: Role, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.max_age)
        payload = f"{user_id}|{role.value}|{expires}".encode()
        return _b64(payload) + "." + _b64(self._sign(payload))

    def verify(self, token: str | None, now: float | None = None) -> Identity | None:
        """The identity in a valid, unexpired token; None for anything else."""
        if not token or token.count(".") != 1:
            return None
        encoded, signature = token.split(".")
        try:
            payload = _unb64(encoded)
            if not hmac.compare_digest(_unb64(signature), self._sign(payload)):
                return None
            user_id, role, expires = payload.decode().split("|")
            identity = Identity(int(user_id), Role(role), int(expires))
        except (ValueError, UnicodeDecodeError):
            return None
        return identity if identity.expires > (now or time.time()) else None

    def from_cookie_header(self, header: str | None) -> Identity | None:
        if not header:
            return None
        cookie = SimpleCookie()
        try:
            cookie.load(header)
        except Exception:  # http.cookies raises CookieError and others on junk headers
            return None
        morsel = cookie.get(COOKIE)
        return self.verify(morsel.value if morsel else None)

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
