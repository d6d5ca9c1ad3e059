"""``python -m claudesec``: the same entry point as the ``claudesec`` console script."""

from claudesec.cli.entry import run

if __name__ == "__main__":
    run()
