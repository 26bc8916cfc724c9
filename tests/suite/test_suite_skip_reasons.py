"""Every skip the suite's own tests can take is registered, read from their source.

A skip is only taken on some machines (not root, not Linux, no unshare), never in CI, so a
reason missing from ``SKIP_REGISTRY`` would pass CI and fail the README's test command on a
newcomer's machine. The reasons are read from the test files' syntax: ``pytest.skip("...")``,
the literal start of ``pytest.skip(f"...")``, and ``skipif(..., reason="...")``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import registered_reason

TESTS = Path(__file__).resolve().parents[1]

#: The one skip written to prove that an unregistered reason fails the run.
DELIBERATELY_UNREGISTERED = frozenset({"flaky on my machine"})


def _literal_start(node: ast.expr) -> str | None:
    """The text a string argument starts with, as far as the source fixes it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def _is_named(func: ast.expr, name: str) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == name) or (
        isinstance(func, ast.Name) and func.id == name
    )


def skip_reasons(source: str) -> Iterator[str]:
    """The literal reasons of the skips written in ``source``."""
    # Both names contain "skip", so a source without it has none: most of the ~600 files are
    # not parsed at all (a parse and a walk of every node was ~1 s of this test's CPU).
    if "skip" not in source:
        return
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        if _is_named(node.func, "skip") and node.args:
            reason = _literal_start(node.args[0])
        elif _is_named(node.func, "skipif"):
            keyword = next((k for k in node.keywords if k.arg == "reason"), None)
            reason = _literal_start(keyword.value) if keyword is not None else None
        else:
            continue
        if reason:
            yield reason


def test_every_skip_reason_in_the_tests_is_registered() -> None:
    found = {
        (path.relative_to(TESTS).as_posix(), reason)
        for path in TESTS.rglob("*.py")
        if "__pycache__" not in path.parts
        for reason in skip_reasons(path.read_text(encoding="utf-8"))
    }
    assert len(found) > 10, found  # the reading finds the suite's skips at all
    unregistered = sorted(
        (where, reason) for where, reason in found
        if registered_reason(reason) is None and reason not in DELIBERATELY_UNREGISTERED
    )
    assert unregistered == []


def test_the_reading_finds_each_form_of_skip() -> None:
    source = (
        "import pytest\n"
        "MARK = pytest.mark.skipif(True, reason='a mark')\n"
        "def test_a(x):\n"
        "    pytest.skip('a call')\n"
        "    pytest.skip(f'a formatted call: {x}')\n"
    )
    assert sorted(skip_reasons(source)) == ["a call", "a formatted call: ", "a mark"]
