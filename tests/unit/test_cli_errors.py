"""The one top-level handler: known errors print their message, unknown ones a crash report,
broken pipes end quietly; every path exits non-zero."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

import pytest

from preform_pipeline import cli
from preform_pipeline.commands import validate as validate_command
from preform_pipeline.crash import CRASH_DIR_ENV, shorten
from preform_pipeline.errors import ModelFileError
from tests.conftest import RECIPES

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


def invoke(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def failing_with(exc: BaseException):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
        raise exc

    return run


@pytest.fixture
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "crashes"
    monkeypatch.setenv(CRASH_DIR_ENV, str(folder))
    return folder


class TestUnknownErrors:
    """An exception that is not the project's own prints one line naming a crash report."""

    def test_one_line_and_a_crash_report_with_the_traceback(
        self, crash_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(validate_command, "run", failing_with(ZeroDivisionError("boom")))
        code, out, err = invoke("validate", "x.yaml")
        assert code == cli.EXIT_CRASH != 0
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1
        assert "ZeroDivisionError: boom" in lines[0]
        assert "Traceback" not in err
        reports = list(crash_dir.iterdir())
        assert len(reports) == 1 and str(reports[0]) in lines[0]
        text = reports[0].read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" in text
        assert "validate x.yaml" in text


class TestKnownErrors:
    """A PipelineError prints its message, cut to a readable length, and exits 1."""

    def test_message_and_exit_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        error = ModelFileError("part.stl", "this is a PNG image, not an STL", hint="export it")
        monkeypatch.setattr(validate_command, "run", failing_with(error))
        code, _, err = invoke("validate", "x.yaml")
        assert code == cli.EXIT_FAILURE
        assert err == "error: part.stl: this is a PNG image, not an STL (export it)\n"

    def test_a_huge_message_is_cut_and_kept_whole_in_a_file(
        self, crash_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        label = "L" * 10_000
        error = ModelFileError("case-7/part.stl", f"label {label!r} does not fit")
        monkeypatch.setattr(validate_command, "run", failing_with(error))
        code, _, err = invoke("validate", "x.yaml")
        assert code == cli.EXIT_FAILURE
        assert len(err) < 700
        assert "case-7/part.stl" in err and "characters cut" in err
        kept = list(crash_dir.iterdir())
        assert len(kept) == 1 and label in kept[0].read_text(encoding="utf-8")

    def test_shorten_leaves_short_text_alone(self) -> None:
        assert shorten("a\nb") == "a\nb"


class TestBrokenPipe:
    """A reader that goes away ends the command quietly."""

    def test_in_process_broken_pipe_returns_quietly(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(validate_command, "run", failing_with(BrokenPipeError()))
        code, _, err = invoke("validate", "x.yaml")
        assert code == cli.EXIT_BROKEN_PIPE
        assert err == ""

    def test_a_closed_pipe_prints_no_traceback(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        recipe = sorted(RECIPES.glob("*.yaml"))[0]
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "validate", "--format", "json",
             *[str(recipe)] * 20],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # like `| head` that has read enough
        err = process.stderr.read().decode()
        code = process.wait(timeout=TIMEOUT_S)
        process.stderr.close()
        assert "Traceback" not in err and "BrokenPipe" not in err
        assert code == cli.EXIT_BROKEN_PIPE


class TestJobsShow:
    """A job id too large for the store is a clear error, not an OverflowError."""

    def test_huge_job_id(self, tmp_path: Path) -> None:
        from preform_pipeline.store.sqlite import SqliteJobStore

        store = tmp_path / "jobs.sqlite3"
        with SqliteJobStore(store):
            pass
        code, _, err = invoke("jobs", "--store", str(store), "show", "99999999999999999999")
        assert code == cli.EXIT_FAILURE
        assert "no job with id 99999999999999999999" in err
        assert "Overflow" not in err


class TestACommandsNameAsAWordOfAnother:
    """Review (rv45-spawn): the CLI gives arguments to each command a word of the line names
    (``cli._arguments_of``); a word that is another command's name, a file or a value (``run
    recipe.yaml jobs``, ``jobs show run``), must not change what the line parses to nor what
    its usage error says."""

    @pytest.mark.parametrize(("line", "dest"), [
        (["run", "recipe.yaml", "{}"], "models"),
        (["plan", "recipe.yaml", "a.stl", "{}"], "models"), (["validate", "{}"], "recipes"),
        (["jobs", "show", "{}"], "job"),
        (["jobs", "--recipe", "{}", "list"], "recipe"),
    ], ids=lambda value: " ".join(value) if isinstance(value, list) else value)
    def test_it_parses_as_any_other_word(self, line: list[str], dest: str) -> None:
        def parsed(word: str) -> tuple[dict[str, object], object, str]:
            args, command = cli.parse_args([w.replace("{}", word) for w in line])
            values = vars(args)
            return values, values.pop(dest), command.NAME

        other = parsed("other")
        for word in ("jobs", "run", "serve", "validate"):
            values, value, module = parsed(word)
            assert (values, module) == (other[0], other[2])
            assert str(value).replace(word, "other") == str(other[1])

    def test_its_usage_error_is_the_commands_own(self) -> None:
        code, _, said = invoke("run", "other")
        assert code == 2
        for word in ("jobs", "serve", "watch"):
            assert invoke("run", word) == (code, "", said)
