"""Typer glue. Each command group is one module; domain code is imported inside commands."""
