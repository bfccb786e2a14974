"""httpx for the tests' loopback HTTP, with one TLS context for every client.

httpx builds a TLS context for each client it makes (``httpx.get`` makes one per call), loading the CA
bundle: ~25 ms of CPU each. The readiness polls and request helpers of the suite made thousands of them
(~90 s of its CPU). Loopback URLs are plain HTTP, so the context is never used for a connection; tests that
speak TLS (the nginx ones) pass their own ``verify``.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

CONTEXT = ssl.create_default_context()


def client(**kw: Any) -> httpx.Client:
    return httpx.Client(verify=CONTEXT, **kw)


def async_client(**kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=CONTEXT, **kw)


def get(url: str, **kw: Any) -> httpx.Response:
    return httpx.get(url, verify=CONTEXT, **kw)


def post(url: str, **kw: Any) -> httpx.Response:
    return httpx.post(url, verify=CONTEXT, **kw)
