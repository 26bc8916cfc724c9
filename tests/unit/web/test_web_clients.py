"""The web tests ask the dashboard through :mod:`tests.unit.web.clients` alone: one timeout,
long enough for a loaded machine, never httpx's 5 s default (session 46: exceeded at load 30)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.unit.web import clients

TESTS = Path(__file__).resolve().parents[2]
#: httpx's calls that make a request or a client, each with its own 5 s default, and the
#: imports that would reach them under another name (review rv47-loose: ``from httpx import
#: get`` and ``httpx.AsyncClient`` passed).
_BARE = re.compile(r"\bhttpx\.(get|post|put|patch|delete|head|options|request|stream|Client"
                   r"|AsyncClient)\(|^\s*from\s+httpx\s+import\b|^\s*import\s+httpx\s+as\b",
                   re.MULTILINE)

#: The clients themselves, and this file, which makes a bare client to compare with.
_ASKING_BARE = {"clients.py", Path(__file__).name}


def _web_tests() -> list[Path]:
    return sorted([*(TESTS / "unit" / "web").glob("*.py"),
                   *(TESTS / "integration").glob("test_web_*.py")])


def test_no_web_test_asks_with_httpxs_default_timeout() -> None:
    bare = [f"{path.relative_to(TESTS)}:{text.count(chr(10), 0, found.start()) + 1}"
            for path in _web_tests() if path.name not in _ASKING_BARE
            for text in [path.read_text(encoding="utf-8")]
            for found in _BARE.finditer(text)]
    assert bare == []


def test_the_named_clients_wait_the_named_timeout() -> None:
    with httpx.Client() as bare, clients.Client() as named:
        assert bare.timeout.read is not None and bare.timeout.read < clients.WEB_TIMEOUT_S
        assert named.timeout == httpx.Timeout(clients.WEB_TIMEOUT_S)
    assert clients.get.keywords == clients.post.keywords == {"timeout": clients.WEB_TIMEOUT_S}
