"""``claudesec report --from s3://...``: fetch the lake's objects of the period, query, report.

The objects go to a private temporary directory that is removed afterwards, whatever happens;
DuckDB reads them there (see :mod:`claudesec.audit.report.lake_fetch` for why not straight
from S3).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from claudesec.audit.report.build import ReportInputs
from claudesec.audit.report.model import Report
from claudesec.errors import UsageError


def report_from_lake(url: str, inputs: ReportInputs, *, region: str = "") -> Report:
    """The report of ``inputs``' period over the lake at ``url``."""
    try:
        import duckdb  # noqa: F401
    except ImportError:
        raise UsageError(
            "claudesec report --from needs DuckDB and pyarrow",
            hint="pip install 'claudesec[lake]'",
        ) from None
    from claudesec.audit.report.lake import build_lake_report, connect, period_values
    from claudesec.audit.report.lake_fetch import fetch

    period = period_values(inputs)
    with tempfile.TemporaryDirectory(prefix="claudesec-lake-") as tmp:
        # Every day up to the period's end: "first seen" looks at the whole lake before it.
        fetched = fetch(url, Path(tmp), last_day=str(period["last_day"]), region=region)
        if fetched.objects == 0:
            raise UsageError(
                f"no Parquet object under {url} up to the end of the period",
                hint="check the URL (the lake sink's bucket and location) and --until",
            )
        conn = connect(Path(tmp))
        try:
            return build_lake_report(conn, inputs, url)
        finally:
            conn.close()
