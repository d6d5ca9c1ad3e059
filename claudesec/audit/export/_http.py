"""A small keep-alive HTTP client for the HTTP sinks and alert targets.

Standard library only (``http.client``): one persistent connection per sink, which is what
makes shipping fast (a new TCP/TLS handshake per batch costs more than the batch), and no
extra dependency on the export path.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from claudesec.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def retry_after_s(self) -> float | None:
        value = self.headers.get("retry-after", "")
        try:
            return max(0.0, float(value)) if value else None
        except ValueError:
            return None


class HttpClient:
    """Requests to one origin over one reused connection."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, ca_bundle: str = "") -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) URL: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.query = parts.query
        self.timeout_s = timeout_s
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._context = ssl.create_default_context(cafile=ca_bundle or None)
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._context is not None:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout_s, context=self._context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout_s
                )
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request; network failures raise ``OSError``/``http.client.HTTPException``
        after the connection is dropped, so the next call starts clean."""
        target = self.base_path + path
        if self.query and "?" not in path:
            target += "?" + self.query
        conn = self._connection()
        try:
            conn.request(method, target, body=body, headers=dict(headers or {}))
            answer = conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if answer.will_close:
            self.close()
        return Response(
            status=answer.status,
            headers={k.lower(): v for k, v in answer.getheaders()},
            body=data,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
