"""Shared links: a revocable, read-only view of one site for people without an account.

An admin creates a link (optionally with a password, optionally expiring); its
secret token is shown once and stored only as its SHA-256 (256 random bits: a
fast hash is enough, as for API keys). A password is stored as an argon2 hash
like a user's. A link is refused once revoked or past its expiry — checked on
every request, so revoking works at once. What the view may show is the
overview's aggregates under the same query layer (K, ``(other)``, no
differencing): a link adds no way to ask for anything else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dashboards.store import Store
from dashboards.users import MIN_PASSWORD, dummy_hash

TOKEN_PREFIX = "ocs_"
MAX_NAME = 64
Status = Literal["active", "expired", "revoked"]


class ShareError(ValueError):
    """A link cannot be created as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class SharedLink:
    id: int
    site: str
    name: str
    has_password: bool
    expires_at: int | None
    created_by: str
    created_at: int
    revoked_at: int | None
    last_used_at: int | None

    def status(self, now: dt.datetime) -> Status:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now.timestamp() >= self.expires_at:
            return "expired"
        return "active"

    @property
    def actor(self) -> str:
        """How its views are recorded in the audit log (never the token)."""
        return f"share:{self.name}#{self.id}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _link(row: sqlite3.Row) -> SharedLink:
    return SharedLink(
        row["id"],
        row["site"],
        row["name"],
        row["password_hash"] is not None,
        row["expires_at"],
        row["created_by"],
        row["created_at"],
        row["revoked_at"],
        row["last_used_at"],
    )


class SharedLinks:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._hasher = PasswordHasher()
        self._dummy = dummy_hash(self._hasher)

    def create(
        self,
        site: str,
        name: str,
        created_by: str,
        now: dt.datetime,
        *,
        password: str = "",
        expires_at: dt.datetime | None = None,
    ) -> tuple[SharedLink, str]:
        """A new link and its secret token (the only time the token exists in clear)."""
        name = " ".join(name.split())[:MAX_NAME] or "shared view"
        if password and len(password) < MIN_PASSWORD:
            raise ShareError(f"A link's password needs at least {MIN_PASSWORD} characters.")
        if expires_at is not None and expires_at <= now:
            raise ShareError("The expiry must be in the future.")
        digest = self._hasher.hash(password) if password else None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expiry = int(expires_at.timestamp()) if expires_at is not None else None
        with self._store.connect() as con:
            cur = con.execute(
                "INSERT INTO shared_links (site, name, token_hash, password_hash, expires_at, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (site, name, _hash(token), digest, expiry, created_by, int(now.timestamp())),
            )
            row = con.execute("SELECT * FROM shared_links WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _link(row), token

    def list(self) -> list[SharedLink]:
        with self._store.connect() as con:
            return [_link(r) for r in con.execute("SELECT * FROM shared_links ORDER BY created_at DESC, id DESC")]

    def revoke(self, link_id: int, now: dt.datetime) -> SharedLink | None:
        with self._store.connect() as con:
            cur = con.execute(
                "UPDATE shared_links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (int(now.timestamp()), link_id),
            )
            if cur.rowcount != 1:
                return None
            row = con.execute("SELECT * FROM shared_links WHERE id = ?", (link_id,)).fetchone()
        return _link(row)

    def find(self, token: str) -> SharedLink | None:
        """The link of a token, whatever its status (the caller refuses revoked and expired ones)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        digest = _hash(token)
        with self._store.connect() as con:
            row = con.execute("SELECT * FROM shared_links WHERE token_hash = ?", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            return None
        return _link(row)

    def used(self, link: SharedLink, now: dt.datetime) -> None:
        with self._store.connect() as con:
            con.execute("UPDATE shared_links SET last_used_at = ? WHERE id = ?", (int(now.timestamp()), link.id))

    def check_password(self, link: SharedLink, password: str) -> bool:
        """Slow on purpose (argon2), and as slow for a link without a password."""
        with self._store.connect() as con:
            row = con.execute("SELECT password_hash FROM shared_links WHERE id = ?", (link.id,)).fetchone()
        digest = row["password_hash"] if row is not None and row["password_hash"] else self._dummy
        try:
            self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False
        return row is not None and row["password_hash"] is not None
