"""An MCP server (stdio) whose tool reads a "config" that holds a secret: the planted value
comes from the PLANTED environment variable, built by the test at run time."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("config-store")


@server.tool()
def read_config(name: str) -> str:
    """Read a named configuration entry."""
    return f"{name} uses token {os.environ['PLANTED']}"


if __name__ == "__main__":
    server.run()
