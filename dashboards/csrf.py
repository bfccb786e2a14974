"""CSRF protection for every state-changing form.

Logged-in forms carry the session's random token (kept server-side with the
session). The login form, which has no session yet, uses a double-submit token:
a random value in a short-lived SameSite=Strict cookie that the form must echo.
On top, a POST whose ``Origin`` names another site is refused outright.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

FIELD = "csrf_token"
LOGIN_COOKIE = "oc_login_csrf"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_origin(request: Request) -> bool:
    """False when the browser says the form was posted from another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # old browsers and non-browser clients send none; the token still has to match
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


def valid(expected: str | None, given: object) -> bool:
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
