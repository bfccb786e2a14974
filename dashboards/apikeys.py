"""Stats API keys: shown once when created, stored as SHA-256, revocable.

A key is 32 random bytes (256 bits), so a fast hash is enough: there is nothing
to brute-force that a slow hash would protect (unlike a human's password).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass

from dashboards.store import Store, now

KEY_PREFIX = "oca_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    created_by: str
    created_at: int
    revoked_at: int | None
    last_used_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        row["id"],
        row["name"],
        row["prefix"],
        row["created_by"],
        row["created_at"],
        row["revoked_at"],
        row["last_used_at"],
    )


class ApiKeys:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, name: str, created_by: str) -> tuple[ApiKey, str]:
        """A new key and its secret token (the only time the token exists in clear)."""
        name = name.strip()[:64] or "unnamed"
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._store.connect() as con:
            cur = con.execute(
                "INSERT INTO api_keys (name, prefix, key_hash, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, token[:10], _hash(token), created_by, now()),
            )
            row = con.execute("SELECT * FROM api_keys WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _key(row), token

    def list(self) -> list[ApiKey]:
        with self._store.connect() as con:
            return [_key(r) for r in con.execute("SELECT * FROM api_keys ORDER BY created_at DESC, id DESC")]

    def revoke(self, key_id: int) -> bool:
        with self._store.connect() as con:
            cur = con.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now(), key_id))
            return cur.rowcount == 1

    def verify(self, token: str) -> ApiKey | None:
        if not token.startswith(KEY_PREFIX) or len(token) > 200:
            return None
        digest = _hash(token)
        with self._store.connect() as con:
            row = con.execute("SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (digest,)).fetchone()
            if row is None or not hmac.compare_digest(row["key_hash"], digest):
                return None
            con.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now(), row["id"]))
        return _key(row)
