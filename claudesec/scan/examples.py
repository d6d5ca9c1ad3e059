"""Where a value written by a person is an example: test suites, fixtures, docs, samples.

Some rules recognise a secret by the *name* it is assigned to or the *slot* it sits in (the
generic ``password = "..."`` rule, passwords in URLs and connection strings, Basic and Bearer
headers, an AWS key id alone), not by a format only an issuer produces. In a test suite or a
page of documentation such a value is nearly always made up to show how a call looks
(``password = "E4596f8be406..."`` in a functional test, ``SECRET_KEY = '192b9bdd...'`` in a
tutorial, the ``ClientSecret`` of an API reference's ``examples.json``): on real code nobody
tuned for, most of the generic rule's false alarms were there. Those findings are held back
in these paths and counted in the summary (``scan.examples = "report"`` shows them).

Credentials recognised by their format (private keys, Anthropic, AWS secret keys, cloud
tokens, JWTs, every prefixed key) are reported wherever they are: a real key in ``tests/`` is
still a real key, and the format says it is one.
"""

from __future__ import annotations

import re

# Rules whose evidence is a name or a slot rather than an issuer's format.
HELD_RULES = frozenset(
    {
        "generic-secret-assignment",
        "connection-url-password",
        "connection-string-password",
        "curl-user-password",
        "http-basic-auth",
        "http-bearer-token",
        "aws-access-key-id",
        # A passphrase-protected key is a risk only with its passphrase; in a test suite or a
        # doc it is an example of the format (unprotected keys are reported everywhere).
        "private-key-encrypted",
    }
)

# A folder of tests, fixtures, mocks, docs or samples anywhere in the path (also inside an
# archive: `pkg.whl!pkg/tests/x.py`), or a file named as a test, a spec or an example.
_FOLDER = (
    r"tests?|testing|__tests__|__mocks__|spec|specs|fixtures?|testdata|test[_-]?data"
    r"|test[_-]?resources|mocks?|docs?|documentation|examples?|samples?|demos?|tutorials?"
)
_EXAMPLE_PATH = re.compile(
    rf"""(?ix)(?:^|[/\\!])(?:{_FOLDER})(?:[/\\]|$)
    |(?:^|[/\\!])(?:test_[^/\\]*|conftest\.py|[^/\\]*_tests?\.[a-z0-9]+|[^/\\]*\.(?:test|spec)
        \.[a-z0-9]+|[^/\\]*\.(?:rst|md|markdown|adoc)
        |(?:[^/\\]*[._-])?examples?(?:[._-][^/\\]*)?)$"""
)


_DOCSTRING_QUOTES = (b'"""', b"'''")


def in_docstring(path: str, data: bytes, offset: int) -> bool:
    """Whether ``offset`` of a Python file sits inside a triple-quoted string (a docstring's
    usage example: ``api_key: peWc...`` in a module's configuration docs).

    Counted, not parsed: an odd number of one kind of triple quote before the offset. A file
    that is not Python, or whose quotes do not pair up, is taken as code.
    """
    if not path.endswith((".py", ".pyi")):
        return False
    for quote in _DOCSTRING_QUOTES:
        if data.count(quote) % 2 == 0 and data.count(quote, 0, offset) % 2 == 1:
            return True
    return False


def is_example_path(path: str) -> bool:
    """Whether ``path`` (repository-relative, ``/``-separated) is a test, fixture, doc or
    sample file."""
    return _EXAMPLE_PATH.search(path) is not None
