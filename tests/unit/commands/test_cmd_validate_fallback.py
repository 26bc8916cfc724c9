"""`validate --server` with no server: the fallback is said, and --require-server fails."""

from __future__ import annotations

import io
import socket
from pathlib import Path

from preform_pipeline.cli import run
from tests.conftest import RECIPES


def unused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    return run(["validate", *argv], stdout, stderr), stdout.getvalue(), stderr.getvalue()


class TestFallback:
    """An unreachable server is named, and the summary says which catalogue was used."""

    def recipe(self) -> Path:
        return sorted(RECIPES.glob("*.yaml"))[0]

    def test_fallback_is_said_and_valid_recipes_still_pass(self) -> None:
        url = unused_url()
        code, out, err = invoke("--server", url, "--server-timeout", "1", str(self.recipe()))
        assert code == 0
        assert "not checked against that server" in err
        assert out.rstrip().endswith("(checked against shipped catalogue, not on a server)")
        assert url not in out  # the note on stderr says why, once

    def test_require_server_makes_the_fallback_a_failure(self) -> None:
        code, _, err = invoke("--server", unused_url(), "--server-timeout", "1",
                              "--require-server", str(self.recipe()))
        assert code == 1
        assert "--require-server" in err

    def test_require_server_says_what_failed_where_and_what_helps_and_no_ok(self) -> None:
        url = unused_url()
        code, out, err = invoke("--server", url, "--server-timeout", "1",
                                "--require-server", str(self.recipe()))
        assert code == 1
        assert "OK" not in out
        assert out.rstrip().endswith(
            "FAILED: not checked on a server (--require-server); "
            "the shipped catalogue finds no problem")
        assert err.startswith(f"error: --require-server: server {url} not usable: ")
        assert "check that PreFormServer or the simulator runs at that address" in err
