"""`claudesec org`: the Claude organisation's inventory (and, beside it, its posture checks).

Thin glue over :mod:`claudesec.org.inventory`: read once, then print a summary table on a
terminal, the JSON document with ``--json`` (or when piped), and write the evidence file with
``--out``. Exit 0 when every kind the credentials may read was read, 4 when some failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Inventory and posture of the Claude organisation (Admin API).", no_args_is_help=True
)


@app.command("inventory")
def inventory_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the inventory as JSON evidence here.", metavar="FILE"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON document on stdout.")
    ] = False,
) -> int:
    """Read every Admin resource once (paginated, retried) and summarise or export it."""
    import os

    from claudesec.cli._common import load
    from claudesec.console import get_console
    from claudesec.org import inventory_json
    from claudesec.org.inventory import OAUTH_TOKEN_ENV, exit_code, reader_from_config

    config = load(ctx).config
    inventory = reader_from_config(config, environ=os.environ).read()
    console = get_console()
    if out is not None:
        inventory_json.write(out, inventory)
        console.info(f"wrote {out}")
    if as_json or (out is None and not console.rich_output):
        console.json(inventory_json.to_json(inventory))
    elif console.rich_output:
        rows: list[tuple[str, object, str]] = [
            (name, len(items), "read") for name, items in inventory.lists.items()
        ]
        rows += [(name, 1, "read") for name in inventory.singletons]
        rows += [(u.kind, "", f"{u.reason}: {u.message}") for u in inventory.unavailable]
        console.table(("kind", "items", "status"), rows, title="Organisation inventory")
    for entry in inventory.unavailable:
        console.warn(f"{entry.kind} not read ({entry.reason}): {entry.message}")
    if any(u.message.endswith("none was configured") for u in inventory.unavailable):
        console.info(
            f"service accounts and federation need an org:admin OAuth token in {OAUTH_TOKEN_ENV}"
        )
    return int(exit_code(inventory))
