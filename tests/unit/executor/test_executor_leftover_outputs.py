"""Empty output files below an output folder (executor/leftover_outputs.py), on real files:
which are found, and that each is said once per store."""

from __future__ import annotations

import os
import time
from pathlib import Path

from structlog.testing import capture_logs

from preform_pipeline.executor.leftover_outputs import (
    describe_empty_outputs,
    empty_outputs,
    unsaid_empty_outputs,
)
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
        _file(tmp_path / "e" / "0.txt")  # named before the output in its folder
        later = _file(tmp_path / "e" / "z.form")
        assert empty_outputs(tmp_path, SUFFIXES, before=time.time()) == (shot, form, later)

    def test_a_file_changed_at_the_run_s_very_start_is_not_found(self, tmp_path: Path) -> None:
        form = _file(tmp_path / "a.form")
        assert empty_outputs(tmp_path, SUFFIXES, before=form.lstat().st_mtime) == ()


class TestSaidOnce:
    """A store says each file once; a new empty file at that name is said again."""

    def test_each_file_is_said_once(self, tmp_path: Path) -> None:
        form = _file(tmp_path / "a.form")
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            assert unsaid_empty_outputs(store, [form]) == (form,)
            assert unsaid_empty_outputs(store, [form]) == ()
            _file(form, age_s=60.0)
            with capture_logs() as logs:
                assert unsaid_empty_outputs(store, [tmp_path / "gone.form", form]) == (form,)
        assert logs == [{"event": "empty_outputs_listed", "log_level": "info",
                         "paths": [str(form)]}]


class TestTheLine:
    """One line, the files named below the output folder."""

    def test_the_files_are_named_below_the_folder(self, tmp_path: Path) -> None:
        assert describe_empty_outputs([], tmp_path) == ""
        elsewhere = Path("/elsewhere/b.form")
        assert describe_empty_outputs([tmp_path / "d" / "a.form", elsewhere], tmp_path) == (
            f"2 empty output files in {tmp_path}, as a save killed by an earlier version left "
            "them; not removed (nothing shows they are not yours), said once: delete them if "
            "they are not yours: d/a.form, /elsewhere/b.form")
