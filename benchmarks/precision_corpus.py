"""Precision corpus: real code claudesec was never tuned on, split before any tuning.

    .venv/bin/python benchmarks/precision_corpus.py download [--cache DIR]
    .venv/bin/python benchmarks/precision_corpus.py split            # print the split only
    .venv/bin/python benchmarks/precision_corpus.py measure [--half tuning|held-out|both]
        [--tools claudesec,kingfisher,gitleaks] [--results FILE] [--show N]

Tools: ``claudesec`` and ``kingfisher-all`` (``--no-dedup``) count every place a secret is;
``claudesec-dedup`` (``--dedup``) and ``kingfisher`` (its default) count each distinct secret
once. Compare like with like.

1. ``download`` fetches the pinned packages below with the registries' own clients (PyPI sdists by
   ``pip download --no-deps --no-binary :all:``, npm tarballs by ``npm pack``) into a cache
   outside the repository (``$CLAUDESEC_PRECISION_CACHE``, default
   ``~/.cache/claudesec-precision``) and unpacks each into ``<cache>/<half>/<package>/``. A
   package the registry no longer serves is reported and skipped; the others are unaffected.
2. The half of a package is ``sha256("claudesec-precision-v1:" + registry + ":" + name)``'s first
   byte, even -> ``tuning``, odd -> ``held-out``. It depends on nothing but the name, was fixed
   in the commit that added this script, before any filter was tuned on the corpus, and is never
   to be changed: tuning looks only at the tuning half; the held-out half is only measured.
3. ``measure`` plants fake keys of every kind (made at run time by ``tests/fixtures/keys.py``,
   as ``benchmarks/scan_bench.py`` does) in a ``zz_planted/`` folder of each half, runs
   claudesec, kingfisher and gitleaks (installed from PyPI by ``scan_bench.ensure_tools``) over
   the half, and reports recall per planted kind and the findings outside planted files (every
   one is a false alarm: the packages hold no live credentials), with throughput.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path(
    os.environ.get("CLAUDESEC_PRECISION_CACHE", Path.home() / ".cache/claudesec-precision")
)
SPLIT_SALT = "claudesec-precision-v1"
HALVES = ("tuning", "held-out")

# Pinned: the same bytes on every run. Chosen for what real repositories hold: generated API
# clients (botocore, google-api-python-client, kubernetes, azure-mgmt-*, aws-sdk, googleapis),
# SDK test suites with fixtures (stripe, slack, twilio, moto, authlib, jwt libraries), infra as
# code (troposphere, cfn-lint, checkov, ansible, salt, pulumi, cdktf), notebooks and docs, and
# vendored sources of other languages inside packages.
PYPI: tuple[str, ...] = (
    "botocore==1.44.5",
    "google-api-python-client==2.202.0",
    "kubernetes==37.0.2",
    "azure-mgmt-network==33.1.0",
    "azure-mgmt-compute==39.0.0",
    "azure-storage-blob==12.31.1",
    "azure-identity==1.27.0",
    "azure-keyvault-secrets==4.12.0",
    "google-cloud-aiplatform==2.7.0",
    "google-cloud-storage==3.17.1",
    "google-cloud-bigquery==3.47.0",
    "google-auth==2.62.2",
    "oauthlib==4.0.1",
    "requests-oauthlib==2.0.0",
    "msal==1.39.0",
    "django==6.1.3",
    "flask==3.1.3",
    "sqlalchemy==2.1.9",
    "alembic==1.20.1",
    "celery==5.7.0",
    "ansible-core==2.21.5",
    "salt==3008.5",
    "sympy==1.14.0",
    "transformers==5.23.0",
    "openai==3.51.0",
    "anthropic==2.10.0",
    "moto==5.2.5",
    "troposphere==4.11.1",
    "awscli==1.46.2",
    "cdktf==0.21.0",
    "pulumi-kubernetes==4.34.2",
    "scrapy==2.19.0",
    "paramiko==5.1.0",
    "pyjwt==2.15.1",
    "authlib==1.9.6",
    "python-jose==3.5.0",
    "itsdangerous==2.2.0",
    "passlib==1.7.4",
    "keyring==25.7.0",
    "hvac==2.4.0",
    "boto3==1.44.5",
    "s3transfer==0.19.3",
    "docker==7.2.0",
    "fabric==3.2.3",
    "invoke==3.0.3",
    "tornado==6.6.1",
    "aiohttp==3.14.5",
    "httpx==0.28.1",
    "urllib3==2.8.0",
    "requests==2.34.2",
    "nbconvert==7.17.2",
    "ipython==9.18.1",
    "seaborn==0.13.2",
    "dask==2026.8.0",
    "distributed==2026.8.0",
    "prefect==3.9.1",
    "dbt-core==1.12.6",
    "great-expectations==1.24.1",
    "mlflow==3.18.0",
    "langchain==1.5.0",
    "langchain-core==1.8.1",
    "langchain-community==0.4.2",
    "llama-index-core==0.14.25",
    "pydantic==2.14.3",
    "fastapi==0.163.2",
    "starlette==1.10.0",
    "sentry-sdk==2.75.0",
    "stripe==16.1.0",
    "twilio==9.13.0",
    "slack-sdk==3.47.0",
    "slack-bolt==1.30.0",
    "pygithub==2.10.0",
    "python-gitlab==8.6.0",
    "jira==3.10.5",
    "atlassian-python-api==5.0.5",
    "hubspot-api-client==12.0.0",
    "python-keycloak==7.1.1",
    "snowflake-connector-python==5.2.0",
    "psycopg==3.3.9",
    "pymysql==1.2.4",
    "redis==8.1.0",
    "kafka-python==3.0.12",
    "elasticsearch==9.5.1",
    "opensearch-py==3.2.0",
    "pymongo==4.20.0",
    "minio==7.2.20",
    "checkov==3.3.30",
    "pre-commit==4.7.0",
    "detect-secrets==1.5.0",
    "bandit==1.9.4",
    "mkdocs==1.6.1",
    "sphinx==9.2.0",
    "kopf==1.45.2",
    "openshift==0.13.2",
    "azure-cli-core==2.91.0",
    "oci==2.189.0",
    "ibm-cloud-sdk-core==3.28.0",
    "hcloud==2.27.0",
    "linode-api4==5.48.0",
    "cfn-lint==1.58.0",
    "terraform-compliance==1.16.0",
)
NPM: tuple[str, ...] = (
    "aws-sdk@2.1693.0",
    "@aws-sdk/client-s3@3.1175.0",
    "@aws-sdk/client-bedrock-runtime@3.1164.0",
    "googleapis@188.0.0",
    "@googleapis/sqladmin@42.0.0",
    "@kubernetes/client-node@2.0.1",
    "@azure/storage-blob@12.34.0",
    "@azure/identity@4.14.1",
    "@azure/openai@2.0.0",
    "firebase@13.2.0",
    "firebase-admin@14.5.1",
    "stripe@23.1.0",
    "@slack/web-api@8.2.0",
    "@slack/bolt@5.1.0",
    "@octokit/rest@22.0.1",
    "typescript@7.0.2",
    "eslint@10.15.0",
    "webpack@5.112.2",
    "react-dom@19.3.1",
    "@angular/core@22.2.6",
    "vue@3.5.45",
    "lodash@4.18.1",
    "moment@2.31.0",
    "axios@1.21.1",
    "express@5.3.0",
    "jsonwebtoken@9.0.3",
    "passport@0.7.0",
    "openai@7.55.0",
    "@anthropic-ai/sdk@1.10.0",
    "@google-cloud/storage@8.4.0",
    "@google/genai@3.1.0",
    "mongodb@7.8.0",
    "mysql2@3.24.5",
    "pg@8.23.1",
    "redis@6.3.1",
    "ioredis@6.0.0",
    "sequelize@6.37.8",
    "@prisma/client@7.10.0",
    "jose@6.2.17",
    "node-forge@1.4.3",
    "ssh2@1.17.0",
    "dotenv@18.0.10",
    "cdk8s-plus-28@2.5.6",
    "@cdktf/provider-aws@21.22.1",
    "serverless@4.43.0",
    "@sentry/node@11.12.0",
    "twilio@6.2.0",
    "@sendgrid/mail@8.1.6",
    "monaco-editor@0.57.0",
    "pdfjs-dist@6.5.438",
    "three@0.187.0",
)


def package_name(spec: str) -> str:
    """The name part of ``name==ver`` (PyPI) or ``name@ver`` / ``@scope/name@ver`` (npm)."""
    if "==" in spec:
        return spec.split("==", maxsplit=1)[0].lower()
    return spec.rsplit("@", 1)[0]


def half_of(registry: str, name: str) -> str:
    """The fixed half of a package: by a hash of its registry and name, nothing else."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{registry}:{name}".encode()).digest()
    return HALVES[digest[0] & 1]


def specs() -> list[tuple[str, str, str]]:
    """(registry, spec, half) of every pinned package."""
    return [("pypi", s, half_of("pypi", package_name(s))) for s in PYPI] + [
        ("npm", s, half_of("npm", package_name(s))) for s in NPM
    ]


def folder_name(registry: str, spec: str) -> str:
    return f"{registry}-{package_name(spec).replace('/', '__').lstrip('@')}"


# ------------------------------------------------------------------ download


# pip prepares an sdist's metadata before it keeps it; with the common build backends already
# installed in a helper virtualenv, ``--no-build-isolation`` skips building a fresh backend
# environment per package (minutes each for compiled projects on a 2-core machine).
BACKENDS = (
    "setuptools",
    "setuptools-scm",
    "wheel",
    "hatchling",
    "hatch-vcs",
    "hatch-fancy-pypi-readme",
    "flit-core",
    "poetry-core",
    "pdm-backend",
)


def _pip(cache: Path) -> str:
    venv = cache / "pip-venv"
    pip = venv / "bin" / "pip"
    if not pip.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(pip), "install", "-q", *BACKENDS], check=True)
    return str(pip)


def _fetch(registry: str, spec: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    if registry == "pypi":
        cmd = [_pip(into.parents[1]), "download", "-q", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--no-build-isolation", "-d", str(into), spec]
    else:
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(into), spec]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    files = [p for p in into.iterdir() if p.is_file()]
    if len(files) != 1:
        raise RuntimeError(f"expected one archive for {spec}, got {len(files)}")
    return files[0]


def _unpack(archive: Path, dest: Path) -> None:
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if dest.resolve() not in target.parents and target != dest.resolve():
                    continue  # never write outside the package's folder
                zf.extract(info, dest)
        return
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")


def _download_one(cache: Path, registry: str, spec: str, half: str) -> str | None:
    """Fetch and unpack one package; the error line if the registry did not serve it."""
    dest = cache / half / folder_name(registry, spec)
    if dest.is_dir():
        return None
    staging = cache / "archives" / folder_name(registry, spec)
    try:
        if staging.exists():
            shutil.rmtree(staging)
        archive = _fetch(registry, spec, staging)
        tmp = Path(tempfile.mkdtemp(dir=cache))
        _unpack(archive, tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)
    except (subprocess.SubprocessError, OSError, RuntimeError, tarfile.TarError) as exc:
        return f"{spec}: {(str(exc).splitlines() or [''])[0][:120]}"
    print(f"{half:8} {spec}", flush=True)
    return None


def download(cache: Path, jobs: int = 3) -> int:
    cache.mkdir(parents=True, exist_ok=True)
    _pip(cache)  # the helper venv, once, before the workers share it
    with ThreadPoolExecutor(jobs) as pool:
        errors = [e for e in pool.map(lambda s: _download_one(cache, *s), specs()) if e is not None]
    for half in HALVES:
        print(f"{half}: {_size(cache / half) / 1e6:.0f} MB")
    for error in errors:
        print(f"skipped (pip or npm could not fetch or prepare it) {error}", file=sys.stderr)
    return 0


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def show_split() -> int:
    counts = Counter(half for _, _, half in specs())
    for registry, spec, half in specs():
        print(f"{half:8} {registry:4} {spec}")
    print(dict(counts))
    return 0


# ------------------------------------------------------------------ measure

PLANTED = "zz_planted"


@dataclass
class PlantedFile:
    path: str  # relative to the half's root
    kind: str


@dataclass
class ToolRun:
    tool: str
    wall: float
    cpu: float
    found: set[tuple[str, int]]
    rules: dict[tuple[str, int], str] = field(default_factory=dict)


def plant(root: Path) -> list[PlantedFile]:
    """Fresh fake credentials of every kind under ``root/zz_planted``: the catalogue's key
    kinds in every file context, and credential files made by the real tools."""
    from tests.fixtures.credentials import CredentialMaker
    from tests.fixtures.keys import KEY_MAKERS, KeyFactory, contexts

    base = root / PLANTED
    if base.exists():
        shutil.rmtree(base)
    base.mkdir()
    planted: list[PlantedFile] = []
    factory = KeyFactory(16)
    ext = {"notebook": ".ipynb", "minified-js": ".min.js", "json": ".json", "yaml": ".yaml"}
    for maker in KEY_MAKERS:
        for context, wrap in contexts().items():
            key = getattr(factory, maker)()
            rel = f"{PLANTED}/{maker}-{context}{ext.get(context, '.txt')}"
            (root / rel).write_text(wrap(key.value))
            planted.append(PlantedFile(rel, key.kind))
    credentials = CredentialMaker(16)
    try:
        for index, made in enumerate(credentials.every_file()):
            folder = base / f"{index:03}-{made.kind}"
            folder.mkdir()
            (folder / made.name).write_text(made.text)
            planted.append(PlantedFile(str((folder / made.name).relative_to(root)), made.kind))
    finally:
        credentials.close()
    return planted


def planted_files(root: Path) -> list[PlantedFile]:
    """The files a previous :func:`plant` left (kinds from their names): lets one run measure
    the very files another run planted, while that run's peers are still reading them."""
    planted = []
    for entry in sorted((root / PLANTED).iterdir()):
        if entry.is_file():
            planted.append(PlantedFile(str(entry.relative_to(root)), entry.name.split("-")[0]))
        else:
            for inner in entry.iterdir():
                kind = entry.name.split("-", 1)[1]
                planted.append(PlantedFile(str(inner.relative_to(root)), kind))
    return planted


def _run_tools(root: Path, tools: list[str], out: Path) -> list[ToolRun]:
    import scan_bench as sb

    peers = sb.ensure_tools() if set(tools) - {"claudesec", "claudesec-dedup"} else {}
    runs = []
    for tool in tools:
        if tool in ("claudesec", "claudesec-dedup"):
            # ``claudesec-dedup``: one finding per distinct secret (``--dedup``), as kingfisher
            # counts by default; ``claudesec`` one per place, as ``kingfisher-all`` counts.
            extra = ["--dedup"] if tool == "claudesec-dedup" else []
            cmd = [*sb.CLAUDESEC, "scan", str(root), "--no-git", *extra]
            wall, _, _, stdout = sb.timed(cmd, out, timeout=7200)
            rules = sb.claudesec_rules(stdout, root)
            runs.append(ToolRun(tool, wall, sb.LAST_CPU[0], set(rules), rules))
        elif tool in ("kingfisher", "kingfisher-all"):
            # kingfisher reports a value once however many files hold it; ``kingfisher-all``
            # is the same binary with ``--no-dedup``: every file and line, as claudesec counts.
            report = out / f"{tool}.json"
            cmd = sb.kingfisher_command(
                peers["kingfisher"], "none", report, every_occurrence=tool == "kingfisher-all"
            )
            wall, _, _, _ = sb.timed(cmd, root, timeout=7200)
            rules = sb.kingfisher_rules(report, root)
            runs.append(ToolRun(tool, wall, sb.LAST_CPU[0], set(rules), rules))
        elif tool == "gitleaks":
            report = out / "gitleaks.json"
            cmd = sb.gitleaks_command(peers["gitleaks"], "dir", report)
            wall, _, _, _ = sb.timed(cmd, root, timeout=7200)
            rules = sb.gitleaks_rules(report, root)
            runs.append(ToolRun(tool, wall, sb.LAST_CPU[0], set(rules), rules))
    return runs


def measure(
    cache: Path,
    halves: tuple[str, ...],
    tools: list[str],
    results: Path | None,
    show: int,
    reuse: bool = False,
) -> int:
    sys.path.insert(0, str(REPO))
    lines = [f"precision corpus, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
    for half in halves:
        root = cache / half
        planted = planted_files(root) if reuse else plant(root)
        size = _size(root)
        # Warm the page cache so every tool reads from memory.
        subprocess.run(
            ["bash", "-c", f"find {root} -type f -print0 | xargs -0 cat >/dev/null"], check=False
        )
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            runs = _run_tools(root, tools, Path(tmp))
        lines.append(
            f"\n{half}: {size / 1e6:.0f} MB, {len(planted)} planted files, load {load:.1f}"
        )
        lines.append(
            f"{'tool':15} {'wall s':>7} {'MB/s':>7} {'CPU s':>7} {'MB/CPU s':>9} {'recall':>9} "
            f"{'false alarms':>13}"
        )
        by_kind: dict[str, dict[str, list[bool]]] = {}
        for run in runs:
            hit_files = {path for path, _ in run.found}
            alarms = sorted(f for f in run.found if not f[0].startswith(PLANTED + "/"))
            recalled = [p.path in hit_files for p in planted]
            for p, ok in zip(planted, recalled, strict=True):
                by_kind.setdefault(p.kind, {}).setdefault(run.tool, []).append(ok)
            lines.append(
                f"{run.tool:15} {run.wall:7.1f} {size / 1e6 / run.wall:7.0f} {run.cpu:7.1f} "
                f"{size / 1e6 / max(run.cpu, 0.01):9.0f} {sum(recalled):4}/{len(planted):<4} "
                f"{len(alarms):13}"
            )
            rules = Counter(run.rules.get(f, "?") for f in alarms)
            lines.append(
                f"  {run.tool} false alarms by rule: "
                + ", ".join(f"{rule} {n}" for rule, n in rules.most_common())
            )
            # Never look at the held-out half's findings.
            if run.tool.startswith("claudesec") and show and half == "tuning":
                for path, line in alarms[:show]:
                    lines.append(f"    {path}:{line} {run.rules[(path, line)]}")
        missed = {
            kind: {tool: f"{sum(v)}/{len(v)}" for tool, v in tools_.items()}
            for kind, tools_ in sorted(by_kind.items())
            if not all(all(v) for v in tools_.values())
        }
        lines.append("  recall per kind where any tool missed: " + json.dumps(missed))
    text = "\n".join(lines)
    print(text)
    if results:
        results.write_text(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("download", "split", "measure"))
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--half", choices=(*HALVES, "both"), default="both")
    parser.add_argument("--tools", default="claudesec,kingfisher,gitleaks")
    parser.add_argument("--results", type=Path)
    parser.add_argument("--show", type=int, default=0, help="list N false alarms of claudesec")
    parser.add_argument(
        "--reuse-planted", action="store_true", help="measure the files a previous run planted"
    )
    parser.add_argument(
        "--claudesec-src",
        type=Path,
        help="run claudesec from this source tree (e.g. `git archive` of the baseline commit)",
    )
    args = parser.parse_args(argv)
    if args.command == "download":
        return download(args.cache)
    if args.command == "split":
        return show_split()
    if args.claudesec_src:
        import scan_bench

        os.environ["PYTHONPATH"] = str(args.claudesec_src.resolve())
        scan_bench.CLAUDESEC[:] = [str(REPO / ".venv/bin/python"), "-m", "claudesec"]
    halves: tuple[str, ...] = HALVES if args.half == "both" else (args.half,)
    tools = args.tools.split(",")
    return measure(args.cache, halves, tools, args.results, args.show, args.reuse_planted)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
