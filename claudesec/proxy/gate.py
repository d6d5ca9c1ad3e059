"""The seam between the HTTP server and the audit pipeline.

The server knows HTTP: routes, credentials, bodies, streams, limits. Whether a call may go
ahead and what is recorded (identity -> policy -> DLP -> sampling -> audit) belongs to
:class:`claudesec.guard.pipeline.AuditPipeline`, the same object
:class:`claudesec.guard.client.AuditedAnthropic` runs on. This module holds the two
translations between them: what the server knows about a request into the pipeline's
:class:`~claudesec.guard.pipeline.ApiRequest` (with the proxy's :class:`Origin`), and a
:class:`~claudesec.guard.pipeline.CallDenied` into the error JSON Anthropic clients expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from claudesec.guard.pipeline import ApiRequest, Origin

if TYPE_CHECKING:
    from claudesec.guard.pipeline import CallDenied


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the server knows about a request before its body is read."""

    request_id: str  # the proxy's own id, sent back as x-claudesec-request-id
    method: str
    path: str
    client: str  # peer address
    credential: str = ""  # the credential kind: proxy_token, jwt, anthropic_key, none...
    credential_hint: str = ""  # redacted, never the credential
    token_id: str = ""  # the proxy token's id, once verified

    def api_request(
        self,
        body: Any = None,
        *,
        stream: bool = False,
        headers: tuple[tuple[str, str], ...] = (),
        query: tuple[tuple[str, str], ...] = (),
    ) -> ApiRequest:
        origin = Origin(
            via="proxy",
            client=self.client,
            token_id=self.token_id,
            request_id=self.request_id,
            credential=self.credential,
            credential_hint=self.credential_hint,
        )
        return ApiRequest(
            self.method,
            self.path,
            body=body,
            stream=stream,
            origin=origin,
            headers=headers,
            query=query,
        )


@dataclass(frozen=True, slots=True)
class Denial:
    """A refusal, in Anthropic's error vocabulary so every client shows it sensibly."""

    status: int
    error_type: str  # authentication_error, permission_error, invalid_request_error, ...
    message: str
    reason: str = ""  # the machine-readable code, as recorded

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}

    @classmethod
    def of(cls, denied: CallDenied) -> Denial:
        # The pipeline's messages name kinds and counts, never values: safe to send back.
        return cls(denied.status, denied.error_type, denied.wire_message(), denied.reason)
