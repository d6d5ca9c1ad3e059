"""Loopback servers a drill starts for itself: the Anthropic emulator and a moto server.

Each drill gets its own, registered on its context so the runner stops them whatever
happens. moto lives in the ``drill`` extra: without it, the drills that need AWS are skipped
with the install command rather than failing.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

from claudesec.drill.model import DrillInfraError

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext
    from claudesec.emulator import Emulator

REGION = "us-east-1"
MOTO_MISSING = "needs moto: pip install 'claudesec[drill]'"


def moto_missing() -> str | None:
    return MOTO_MISSING if importlib.util.find_spec("moto") is None else None


def start_emulator(ctx: DrillContext) -> Emulator:
    from claudesec.emulator import Emulator

    try:
        return ctx.resources.enter_context(Emulator())
    except OSError as exc:
        raise DrillInfraError(f"the Anthropic emulator could not start: {exc}") from exc


def start_moto(ctx: DrillContext) -> str:
    """A moto server on loopback (never 0.0.0.0); returns its URL."""
    # werkzeug logs every request to stderr whatever moto's verbose flag says.
    quiet = logging.getLogger("werkzeug")
    if quiet.level < logging.ERROR:
        quiet.setLevel(logging.ERROR)
    server = _quick_stop_moto_server(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
    except OSError as exc:
        raise DrillInfraError(f"the moto server could not start: {exc}") from exc
    ctx.resources.callback(server.stop)
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def _quick_stop_server_class() -> Any:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuickStop(ThreadedMotoServer):
        """moto's server, polling for shutdown every 50 ms instead of werkzeug's 500 ms (an
        interrupted drill run waits on every stop), and serving one request at a time: moto's
        backends are not thread-safe (``list_secrets`` iterating the secrets while another
        crash point creates one failed with "dictionary changed size during iteration" under
        load). Not threaded, werkzeug speaks HTTP/1.0, so no client holds the server with a
        kept-alive connection."""

        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(
                self._ip_address, self._port, app, False, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)

    return QuickStop


def _quick_stop_moto_server(**kwargs: Any) -> Any:
    return _quick_stop_server_class()(**kwargs)


def aws_client(endpoint: str, service: str = "secretsmanager") -> Any:
    """A boto3 client bound to moto, with throwaway credentials: it must never pick up the
    user's own AWS credentials, and must never retry (a crash drill counts every call)."""
    import boto3
    from botocore.config import Config

    client: Any = boto3.client(
        service,  # type: ignore[call-overload]
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="claudesec-drill",
        aws_secret_access_key="claudesec-drill",  # noqa: S106 - moto accepts anything
        config=Config(retries={"total_max_attempts": 1}),
    )
    return client
