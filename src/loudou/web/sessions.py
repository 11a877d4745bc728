"""Browser sessions: a signed, HttpOnly, SameSite=Lax cookie; CSRF tokens; login throttling.

The cookie holds the user id and a fingerprint of the password hash, signed with the
secret key and stamped with its issue time. Changing the password or disabling the user
ends every session at once; the cookie expires after ``MAX_AGE_S``. The CSRF token is
an HMAC of the session cookie, sent in every form (hidden field ``csrf_token``) and in
every HTMX request (``X-CSRF-Token`` header set from a meta tag).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from loudou.auth.models import User

COOKIE = "loudou_session"
LOCALE_COOKIE = "loudou_locale"
MAX_AGE_S = 14 * 24 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SessionData:
    user_id: int
    fingerprint: str


class SessionCodec:
    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="loudou-session")
        self._csrf_key = hashlib.sha256(("csrf:" + secret_key).encode()).digest()

    def issue(self, user: User) -> str:
        return self._serializer.dumps({"u": user.id, "f": _fingerprint(user)})

    def read(self, cookie: str | None) -> SessionData | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=MAX_AGE_S)
            return SessionData(int(data["u"]), str(data["f"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    @staticmethod
    def still_valid(data: SessionData, user: User | None) -> bool:
        return user is not None and user.is_active and hmac.compare_digest(data.fingerprint, _fingerprint(user))

    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self._csrf_key, cookie.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, cookie: str | None, token: str | None) -> bool:
        return bool(cookie and token) and hmac.compare_digest(self.csrf_token(cookie or ""), token or "")


class LoginThrottle:
    """After ``LIMIT`` failures for one e-mail or one client address within ``WINDOW_S``,
    further attempts are refused until the window has passed (per process)."""

    LIMIT = 5
    WINDOW_S = 15 * 60

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.WINDOW_S]
        self._failures[key] = times
        return times

    def blocked_for(self, *keys: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = [int(self.WINDOW_S - (now - times[0])) + 1 for k in keys
                     if len(times := self._recent(k, now)) >= self.LIMIT]
        return max(waits, default=0)

    def fail(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeed(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


def safe_next(target: str | None) -> str:
    """Only same-site absolute paths: no scheme, no host, no '//' or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/board"
    if any(ord(ch) < 32 for ch in target):
        return "/board"
    return target
