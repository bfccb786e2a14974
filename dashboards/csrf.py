"""CSRF protection for every state-changing form.

Logged-in forms carry the session's random token (kept server-side with the
session). The login form, which has no session yet, uses a double-submit token:
a random value in a short-lived SameSite=Strict cookie that the form must echo.
On top, a POST that the browser marks as coming from another site is refused outright.
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
    """False when the browser says the form was posted from another site.

    With ``Referrer-Policy: no-referrer`` Chromium sends ``Origin: null`` even for
    same-origin form posts, so ``Sec-Fetch-Site`` (sent by current browsers) is the
    primary signal; a real ``Origin`` must match the Host. Clients that send
    neither still need the token.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def valid(expected: str | None, given: object) -> bool:
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
