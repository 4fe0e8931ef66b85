"""CORS for browser clients: an allow-list of origins, enforced by the server, not only by the browser.

The tracker posts with ``Content-Type: text/plain`` and the write key in the query string, so its requests are
"simple" (no preflight) and also work through ``sendBeacon``. For a simple request a browser sends the request
whatever the answer's headers say, so the collector itself refuses (403, nothing produced) any request whose
``Origin`` is not on the list; requests without ``Origin`` (servers, apps, curl) are not browser requests and
are judged by their write key alone.
"""

from __future__ import annotations

from collections.abc import Mapping

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Touchpoint-Key"
MAX_AGE_SECONDS = "600"


class OriginPolicy:
    """The configured origins (``collector_allowed_origins``: comma-separated, ``*`` allows any)."""

    def __init__(self, allowed: str) -> None:
        origins = {o.strip().rstrip("/") for o in allowed.split(",") if o.strip()}
        self.any = "*" in origins
        self.origins = frozenset(origins - {"*"})

    def allows(self, origin: str | None) -> bool:
        """True for a request without an Origin header, or from an allowed origin."""
        return origin is None or self.any or origin.rstrip("/") in self.origins

    def headers(self, origin: str | None) -> Mapping[str, str]:
        """Response headers for an allowed browser request (none for non-browser requests)."""
        if origin is None:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",  # sendBeacon sends in credentials mode "include"
            "Access-Control-Expose-Headers": "Retry-After",  # the tracker waits at least that long
            "Vary": "Origin",
        }

    def preflight_headers(self, origin: str) -> Mapping[str, str]:
        return {
            **self.headers(origin),
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": MAX_AGE_SECONDS,
        }
