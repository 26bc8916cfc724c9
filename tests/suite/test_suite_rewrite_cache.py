"""The controller writes pytest's rewritten test modules (and the marked ones: the installed
plugins'), so no worker rewrites them again.

The subprocess cases start a real ``python -m pytest`` with this suite's conftest loaded as a
plugin, over a tiny test folder in tmp_path, with ``PYTHONDONTWRITEBYTECODE=1`` (as on this
machine and in CI, where pytest itself caches nothing); whether a cached file is one pytest
loads is asked of pytest's own reader (:func:`tests.rewrite_cache.stale_modules`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nested_pytest import nested_pytest
from tests.rewrite_cache import modules_to_rewrite, plugin_modules, stale_modules

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120
#: pytest's default ``python_files`` and ``norecursedirs`` (as far as these cases need).
PATTERNS = ("test_*.py", "*_test.py")
SKIP_DIRS = ("build", "venv", "*.egg")

PASSING = "def test_{n}():\n    assert {n} + 1 == {n} + 1\n"
FAILING = "def test_{n}():\n    assert {n} + 1 == {n} + 2\n"
CONFTEST = "import pytest\n\n\n@pytest.fixture\ndef unused():\n    assert True\n"


def write_tree(folder: Path, files: int, body: str = PASSING) -> list[Path]:
    """``files`` test files and a conftest in ``folder``; the files pytest rewrites."""
    (folder / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    tests = [folder / f"test_tiny_{n:03d}.py" for n in range(files)]
    for n, path in enumerate(tests):
        path.write_text(body.format(n=n), encoding="utf-8")
    return [folder / "conftest.py", *tests]


def run_pytest(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PREFORM_PIPELINE_")
    }
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        nested_pytest(*options),
        cwd=folder, env=environment, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        check=False,
    )


class TestTheCacheIsWritten:
    """A run leaves every test module's rewritten code where pytest's reader takes it."""

    def test_many_files_are_written_by_helper_processes_and_the_workers_run_them(
        self, tmp_path: Path
    ) -> None:
        # 90 stale files: enough for helper processes on a machine of two cores or more.
        rewritten = write_tree(tmp_path, 90)
        assert stale_modules(rewritten) == rewritten

        result = run_pytest(tmp_path, "-n", "2")

        assert result.returncode == 0, result.stdout + result.stderr
        assert "90 passed" in result.stdout, result.stdout
        assert stale_modules(rewritten) == []

    def test_a_changed_file_is_rewritten_and_its_new_asserts_run(self, tmp_path: Path) -> None:
        rewritten = write_tree(tmp_path, 2)
        assert run_pytest(tmp_path, "-n", "0").returncode == 0
        assert stale_modules(rewritten) == []

        rewritten[1].write_text(FAILING.format(n=0), encoding="utf-8")
        assert stale_modules(rewritten) == [rewritten[1]]
        result = run_pytest(tmp_path, "-n", "0")

        # The old cached code (a passing assert) is not what ran: the new one failed, and
        # its message is the rewritten one (the values compared).
        assert result.returncode == 1, result.stdout + result.stderr
        assert "assert (0 + 1) == (0 + 2)" in result.stdout, result.stdout
        assert stale_modules(rewritten) == []


class TestWhichFiles:
    """The files written are those pytest rewrites: test files by name, and conftests."""

    def test_test_files_and_conftests_below_and_above_a_path(self, tmp_path: Path) -> None:
        for name in (
            "conftest.py", "sub/conftest.py", "sub/deep/conftest.py", "sub/deep/test_a.py",
            "sub/deep/b_test.py", "sub/deep/helper_support.py", "sub/deep/notes.txt",
            "sub/deep/.hidden/test_h.py", "sub/deep/build/test_b.py", "sub/deep/__pycache__/x.py",
            "sub/other/test_o.py",
        ):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("", encoding="utf-8")

        found = modules_to_rewrite([tmp_path / "sub/deep"], PATTERNS, SKIP_DIRS, tmp_path)

        assert sorted(p.relative_to(tmp_path).as_posix() for p in found) == [
            "conftest.py", "sub/conftest.py", "sub/deep/b_test.py", "sub/deep/conftest.py",
            "sub/deep/test_a.py",
        ]

    def test_a_file_named_on_the_command_line_is_taken_whatever_its_name(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "conftest.py").write_text("", encoding="utf-8")
        (tmp_path / "checks.py").write_text("", encoding="utf-8")

        found = modules_to_rewrite([tmp_path / "checks.py"], PATTERNS, SKIP_DIRS, tmp_path)

        assert sorted(p.name for p in found) == ["checks.py", "conftest.py"]

    def test_conftests_outside_the_root_are_not_taken(self, tmp_path: Path) -> None:
        root = tmp_path / "project"
        (root / "tests").mkdir(parents=True)
        (tmp_path / "conftest.py").write_text("", encoding="utf-8")
        (root / "tests" / "test_x.py").write_text("", encoding="utf-8")

        found = modules_to_rewrite([root / "tests"], PATTERNS, SKIP_DIRS, root)

        assert found == [root / "tests" / "test_x.py"]


def write_marked_package(folder: Path) -> list[Path]:
    """A package ``marked_helpers`` in ``folder`` whose check fails, marked for rewriting by the
    conftest as pytest marks an installed plugin's modules, and a test that calls it; the
    package's files."""
    package = folder / "marked_helpers"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "checks.py").write_text("def check(n):\n    assert n + 1 == n + 2\n",
                                       encoding="utf-8")
    (folder / "conftest.py").write_text(
        'import pytest\n\npytest.register_assert_rewrite("marked_helpers")\n', encoding="utf-8")
    (folder / "test_uses_marked_helpers.py").write_text(
        "from marked_helpers.checks import check\n\n\ndef test_check():\n    check(0)\n",
        encoding="utf-8")
    return [package / "__init__.py", package / "checks.py"]


class TestMarkedModules:
    """The modules pytest rewrites because they are marked (each installed plugin's, or those
    named to ``pytest.register_assert_rewrite``) are written by the run as well."""

    def test_a_marked_package_is_written_and_its_rewritten_asserts_run(
        self, tmp_path: Path
    ) -> None:
        marked = write_marked_package(tmp_path)
        assert stale_modules(marked) == marked

        result = run_pytest(tmp_path, "-n", "0")

        assert result.returncode == 1, result.stdout + result.stderr
        assert "assert (0 + 1) == (0 + 2)" in result.stdout, result.stdout
        assert stale_modules(marked) == []

    def test_a_package_gives_all_its_files_and_a_dotted_or_unknown_name_none(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        marked = write_marked_package(tmp_path)
        (tmp_path / "single.py").write_text("", encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))

        found = plugin_modules(
            ["marked_helpers.checks", "no_such_module_s44", "single", "marked_helpers"])

        assert found == [*marked, tmp_path / "single.py"]
        # Finding them imported nothing: a dotted name's parent package would otherwise be
        # imported (and rewritten) before its cache is written.
        assert "marked_helpers" not in sys.modules
