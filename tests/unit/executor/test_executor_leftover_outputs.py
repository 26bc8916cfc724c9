"""Empty output files below an output folder (executor/leftover_outputs.py), on real files:
which are found, and that each is said once per store."""

from __future__ import annotations

import os
import time
from pathlib import Path

from preform_pipeline.executor.leftover_outputs import empty_outputs, unsaid_empty_outputs
from preform_pipeline.store import SqliteJobStore

SUFFIXES = frozenset({".form", ".png"})


def _file(path: Path, content: bytes = b"", *, age_s: float = 3600.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


class TestFound:
    """Empty, an output's suffix, older than the run, not in a hidden folder, not a link."""

    def test_only_old_empty_outputs_are_found(self, tmp_path: Path) -> None:
        form = _file(tmp_path / "d" / "a.form")
        shot = _file(tmp_path / "d" / "a.PNG")
        _file(tmp_path / "d" / "b.form", b"PK")  # whole
        _file(tmp_path / "d" / "c.txt")  # not an output
        _file(tmp_path / ".preform-staging" / "x" / "s.form")  # staging: not looked in
        _file(tmp_path / "d" / "now.form", age_s=-5.0)  # saved by a run at work now
        (tmp_path / "d" / "link.form").symlink_to(form)
        assert empty_outputs(tmp_path, SUFFIXES, before=time.time()) == (shot, form)


class TestSaidOnce:
    """A store says each file once; a new empty file at that name is said again."""

    def test_each_file_is_said_once(self, tmp_path: Path) -> None:
        form = _file(tmp_path / "a.form")
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            assert unsaid_empty_outputs(store, [form]) == (form,)
            assert unsaid_empty_outputs(store, [form]) == ()
            _file(form, age_s=60.0)
            assert unsaid_empty_outputs(store, [form]) == (form,)
