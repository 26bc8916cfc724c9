"""Commands that read a store which is not there yet say so, even when its name is too long
for the file system to hold (Python 3.11's ``Path.exists`` raised "File name too long",
which reached the user as an unexpected failure)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from preform_pipeline.cli import run


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / ("x" * 300 + ".sqlite3")


class TestAStoreNameTooLongToExist:
    """``jobs``, ``jobs waiting`` and ``verify`` answer as for a store not made yet."""

    @pytest.mark.parametrize(
        ("command", "said"),
        [(["jobs"], "no jobs (no job store at"),
         (["jobs", "waiting"], "no builds waiting for a printer"),
         (["verify"], "no job store at")],
    )
    def test_it_is_no_store_yet(self, store: Path, command: list[str], said: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        assert run([*command, "--store", str(store)], out, err) == 0, err.getvalue()
        assert said in out.getvalue()
        assert err.getvalue() == ""
