"""Recipes, settings and secret files that are a device or a named pipe are refused at once:
/dev/zero filled the memory and a pipe with no writer waited for ever. POSIX only (named
pipes and /dev/zero); each command is a subprocess whose address space is capped, so the
old behaviour fails the test instead of the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES

TIMEOUT_S = 60.0
#: Far above what a command needs (about 100 MB), far below what /dev/zero would take.
MEMORY_CAP = 1024**3
DEVICE = "not a regular file (a device, pipe or socket)"


def command(*argv: str) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run([sys.executable, "-m", "preform_pipeline", *argv], text=True,
                          capture_output=True, timeout=TIMEOUT_S, check=False, preexec_fn=cap)


@pytest.fixture
def pipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    os.mkfifo(path)
    return path


class TestRecipes:
    """`validate` names a device, a pipe and a base recipe that is one."""

    def test_each_is_a_problem_of_its_own(self, tmp_path: Path, pipe: Path) -> None:
        child = tmp_path / "child.yaml"
        child.write_text("extends: /dev/zero\nname: child\n", encoding="utf-8")
        done = command("validate", str(pipe), "/dev/zero", str(child))
        assert done.returncode == 1, done.stderr
        assert f"{pipe}: $: cannot read the file: {DEVICE}" in done.stdout
        assert f"/dev/zero: $: cannot read the file: {DEVICE}" in done.stdout
        assert (f"child.yaml:1:10: $.extends: base recipe '/dev/zero' cannot be read ({DEVICE})"
                in done.stdout)


class TestSettings:
    """`validate --settings` and a command reading its settings refuse them alike."""

    def test_validate(self, pipe: Path) -> None:
        done = command("validate", "--settings", str(pipe))
        assert done.returncode == 1, done.stderr
        assert f"{pipe}: $: cannot read the file: {DEVICE}" in done.stdout

    def test_plan(self, tmp_path: Path) -> None:
        done = command("plan", "--settings", "/dev/zero",
                       str(RECIPES / "engineering-grey-form4.yaml"), str(tmp_path))
        assert done.returncode == 1
        assert f"error: /dev/zero: cannot read settings file: {DEVICE}" in done.stderr


class TestSecretFiles:
    """A web user's secret_file that is a device, or not text, is a settings error."""

    @pytest.mark.parametrize(("secret", "says"), [
        ("/dev/zero", f"cannot read the secret file /dev/zero: {DEVICE}"),
        ("latin1.txt", "latin1.txt is not UTF-8 text"),
    ])
    def test_serve_refuses_to_start(self, tmp_path: Path, secret: str, says: str) -> None:
        (tmp_path / "latin1.txt").write_bytes(b"s\xe9cret-of-twelve")
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            f"store:\n  path: {tmp_path / 'jobs.sqlite3'}\nweb:\n  users:\n    - name: ann\n"
            f"      role: viewer\n      secret_file: {tmp_path / secret}\n", encoding="utf-8")
        done = command("serve", str(settings), "--port", "0")
        assert done.returncode == 1, done.stderr
        assert says in done.stderr and "unexpected failure" not in done.stderr
