"""Login sessions: a random id in a signed cookie, its hash and CSRF token in the store.

The cookie holds only a random session id signed with the secret key
(itsdangerous); the store keeps its SHA-256, so a copy of the database cannot be
replayed as cookies. Logging out or disabling a user deletes the row: the
cookie is dead at once, not when it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from dashboards.store import Store, now
from dashboards.users import User

COOKIE = "oc_session"
DEVICE_COOKIE = "oc_device"
DEVICE_DAYS = 90


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires_at: int


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, store: Store, secret: bytes, lifetime_seconds: int) -> None:
        self._store = store
        self._signer = TimestampSigner(secret, salt="dashboards.session")
        self.lifetime = lifetime_seconds

    def create(self, user: User) -> str:
        """Start a session; returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        t = now()
        with self._store.connect() as con:
            con.execute("DELETE FROM sessions WHERE expires_at < ?", (t,))
            con.execute(
                "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (_hash(session_id), user.id, secrets.token_urlsafe(32), t, t + self.lifetime),
            )
        return self._signer.sign(session_id).decode()

    def _id(self, cookie: str) -> str | None:
        try:
            return self._signer.unsign(cookie, max_age=self.lifetime).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def load(self, cookie: str | None) -> Session | None:
        session_id = self._id(cookie) if cookie else None
        if session_id is None:
            return None
        with self._store.connect() as con:
            row = con.execute(
                "SELECT s.csrf, s.expires_at, u.id, u.name, u.role, u.disabled, u.created_at"
                " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?",
                (_hash(session_id), now()),
            ).fetchone()
        if row is None or row["disabled"]:
            return None
        user = User(row["id"], row["name"], row["role"], False, row["created_at"])
        return Session(user, row["csrf"], row["expires_at"])

    def end(self, cookie: str | None) -> None:
        session_id = self._id(cookie) if cookie else None
        if session_id is not None:
            with self._store.connect() as con:
                con.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(session_id),))


class KnownDevices:
    """A signed "known device" cookie: this browser has logged in to this account before.

    Issued at each successful login (a fresh random id each time), bound to the
    account name, valid ``DEVICE_DAYS``. It is not a credential — the password
    is still checked — it only decides whose failed-login count an attempt
    joins (:mod:`dashboards.ratelimit`): one only this browser can fill. Nothing
    about it is stored; the random id is a counter key in memory at most.
    """

    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="dashboards.known-device")
        self.lifetime = DEVICE_DAYS * 86400

    def issue(self, account: str) -> str:
        return self._serializer.dumps({"a": account.lower(), "d": secrets.token_urlsafe(16)})

    def device(self, cookie: str | None, account: str) -> str | None:
        """This browser's id if the cookie is ours, unexpired and for this account name; else None."""
        if not cookie or len(cookie) > 512:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.lifetime)
        except (BadSignature, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("a") != account.lower() or not isinstance(data.get("d"), str):
            return None
        return str(data["d"])
