"""`claudesec mesh`: service-mesh manifests that force Claude traffic through the proxy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from claudesec.cli._common import require_extra

app = typer.Typer(
    help="Render and lint Istio/Linkerd manifests that force Claude traffic through the proxy.",
    no_args_is_help=True,
)


@app.command("render")
def render(
    kind: Annotated[str, typer.Option("--kind", "-k", help="istio or linkerd.")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace the proxy runs in.")
    ] = "claudesec",
    service: Annotated[str, typer.Option("--service", help="The proxy's Service name.")] = (
        "claudesec-proxy"
    ),
    service_account: Annotated[
        str, typer.Option("--service-account", help="The proxy's ServiceAccount.")
    ] = "claudesec-proxy",
    port: Annotated[int, typer.Option("--port", help="The proxy's port.")] = 8788,
    client_namespaces: Annotated[
        list[str] | None,
        typer.Option(
            "--client-namespace",
            "-c",
            help="Namespace whose pods call Claude through the proxy (repeat; default: default).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
) -> int:
    """Write the manifests (multi-document YAML) for `kubectl apply -f`."""
    require_extra("yaml", "proxy", "claudesec mesh")
    from claudesec.console import get_console
    from claudesec.errors import UsageError
    from claudesec.proxy.mesh import MeshOptions
    from claudesec.proxy.mesh import render as render_manifests

    if kind not in ("istio", "linkerd"):
        raise UsageError(f"unknown mesh {kind!r}", hint="--kind istio or --kind linkerd")
    options = MeshOptions(
        namespace=namespace,
        service=service,
        service_account=service_account,
        port=port,
        client_namespaces=tuple(client_namespaces or ("default",)),
    )
    text = render_manifests("istio" if kind == "istio" else "linkerd", options)
    console = get_console()
    if output is None:
        console.out(text.rstrip("\n"))
    else:
        output.write_text(text, encoding="utf-8")
        console.info(f"wrote {output}")
    return 0


@app.command("lint")
def lint(
    files: Annotated[list[Path], typer.Argument(help="Manifest files ('-' reads stdin).")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace the proxy runs in.")
    ] = "claudesec",
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON lines.")] = False,
) -> int:
    """Flag manifests that let pods reach the Anthropic API around the proxy (exit 1)."""
    import dataclasses
    import sys

    require_extra("yaml", "proxy", "claudesec mesh")
    from claudesec.console import get_console
    from claudesec.errors import UsageError
    from claudesec.proxy.mesh import lint_documents, load_documents

    docs = []
    for path in files:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from exc
        try:
            docs.extend(load_documents(str(path), text))
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    findings = lint_documents(docs, proxy_namespace=namespace)
    console = get_console()
    if as_json:
        console.jsonl(dataclasses.asdict(f) for f in findings)
    else:
        for finding in findings:
            console.out(f"{finding.severity}: {finding.line()}")
        errors = sum(f.severity == "error" for f in findings)
        console.info(
            f"{len(docs)} document(s), {errors} error(s), {len(findings) - errors} warning(s)"
        )
    return 1 if any(f.severity == "error" for f in findings) else 0
