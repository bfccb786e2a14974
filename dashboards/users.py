"""Dashboard users: names, roles (viewer/admin), argon2 password hashes, disabling."""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION

from dashboards.store import Store, now

ROLES = ("viewer", "admin")
MIN_PASSWORD = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class UserError(ValueError):
    """A user cannot be added or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool
    created_at: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def dummy_hash(hasher: PasswordHasher) -> str:
    """A well-formed hash with ``hasher``'s own costs that no password matches, for a name that does not exist.

    Verifying a password against it runs the same argon2 computation as against a real hash, so a miss costs
    as long as a hit. It is random bytes in the hash format, not the hash of any password anyone knows. Building
    it costs nothing, where hashing a random password cost ~0.1 s of CPU at every dashboards start. The type,
    version and costs are argon2-cffi's own, so a change of its defaults changes the dummy with them.
    """

    def b64(n: int) -> str:
        return base64.b64encode(secrets.token_bytes(n)).decode().rstrip("=")

    costs = f"m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
    return f"$argon2{hasher.type.name.lower()}$v={ARGON2_VERSION}${costs}${b64(hasher.salt_len)}${b64(hasher.hash_len)}"


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["name"], row["role"], bool(row["disabled"]), row["created_at"])


class Users:
    def __init__(self, store: Store) -> None:
        self._store = store
        # argon2id with the library's defaults (RFC 9106 "low memory" profile).
        self._hasher = PasswordHasher()
        # Verified against when the name is unknown, so that a miss costs as long as a hit.
        self._dummy = dummy_hash(self._hasher)

    @staticmethod
    def check_name(name: str) -> str:
        if not _NAME.fullmatch(name):
            raise UserError("a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter/digit")
        return name

    def add(self, name: str, password: str, role: str = "viewer") -> User:
        self.check_name(name)
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
        digest = self._hasher.hash(password)
        try:
            with self._store.connect() as con:
                con.execute(
                    "INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                    (name, digest, role, now()),
                )
        except sqlite3.IntegrityError:
            raise UserError(f"user {name!r} exists already") from None
        user = self.get(name)
        assert user is not None
        return user

    def get(self, name: str) -> User | None:
        with self._store.connect() as con:
            row = con.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def list(self) -> list[User]:
        with self._store.connect() as con:
            return [_user(r) for r in con.execute("SELECT * FROM users ORDER BY name")]

    def set_disabled(self, name: str, disabled: bool) -> User:
        with self._store.connect() as con:
            cur = con.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
            if cur.rowcount == 0:
                raise UserError(f"no user {name!r}")
            if disabled:
                # A disabled user is logged out everywhere at once.
                con.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)", (name,))
        user = self.get(name)
        assert user is not None
        return user

    def set_role(self, name: str, role: str) -> User:
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        with self._store.connect() as con:
            if con.execute("UPDATE users SET role = ? WHERE name = ?", (role, name)).rowcount == 0:
                raise UserError(f"no user {name!r}")
        user = self.get(name)
        assert user is not None
        return user

    def authenticate(self, name: str, password: str) -> User | None:
        """The enabled user with this name and password, or None (slow on purpose: argon2)."""
        with self._store.connect() as con:
            row = con.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        digest = row["password_hash"] if row else self._dummy
        try:
            self._hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if self._hasher.check_needs_rehash(digest):
            with self._store.connect() as con:
                con.execute("UPDATE users SET password_hash = ? WHERE id = ?", (self._hasher.hash(password), row["id"]))
        return _user(row)
