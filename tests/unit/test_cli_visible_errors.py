"""What reaches stderr through the commands: hidden characters of names shown as escapes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.commands._common import EXIT_USAGE
from tests.conftest import RECIPES


def _invoke(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


class TestPathsTypedOnTheCommandLine:
    """An ``error:`` line quoting a typed path writes its control characters as escapes."""

    def test_a_commands_own_error_line(self, tmp_path: Path) -> None:
        # `watch` prints its settings error itself (not through the top-level handler).
        code, _, err = _invoke("watch", str(tmp_path / "s\x1b[2Jx\u202e.yaml"))
        assert code == 1
        assert err.startswith(f"error: {tmp_path}/s\\x1b[2Jx\\u202e.yaml: settings file not found")
        assert "\x1b" not in err and "\u202e" not in err
        assert err.endswith("\n") and err.count("\n") == 1  # the line break itself kept

    def test_the_top_level_handlers_error_line(self, tmp_path: Path) -> None:
        # `jobs show` on a store path holding a bell and a carriage return: a PipelineError
        # that reaches cli.run's handler.
        store = tmp_path / "st\x07\r.db"
        store.write_bytes(b"not a database")
        code, _, err = _invoke("jobs", "--store", str(store), "show", "1")
        assert code == 1 and err.startswith("error: ")
        assert "\x07" not in err and "\r" not in err
        assert "st\\x07\\r.db" in err


class TestAFileNamedLikeAnOption:
    """A model file whose name starts with a dash, typed as it is, is read as an option; the
    usage error says so and how to name it (it said only that MODELS were missing)."""

    def test_the_usage_error_says_how_to_name_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "-rf.stl").write_bytes(b"solid x\nendsolid x\n")
        code, _, err = _invoke("run", str(RECIPES / "engineering-grey-form4.yaml"), "-rf.stl")
        assert code == EXIT_USAGE
        assert err.rstrip().endswith(
            "error: the following arguments are required: MODELS ('-rf.stl' is a file here, "
            "but was read as an option: to name it, write ./-rf.stl, or put -- before the "
            "file names)")

    def test_an_option_that_names_no_file_is_said_as_before(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        code, _, err = _invoke("run", "--bogus")
        assert code == EXIT_USAGE
        assert "is a file here" not in err
