"""A build's report beside its ``.form`` is found whatever suffix the recipe gave it, and a
user's own file of that name is never taken for it."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from preform_pipeline.executor.report_beside import BUILD_REPORT_FORMAT, report_beside

KEY = "PP-7M2K9QX0ZD"


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _report(**more: Any) -> dict[str, Any]:
    return {"format": BUILD_REPORT_FORMAT, "job_key": KEY, "steps_done": ["save_form"], **more}


class TestTheReportBesideAForm:
    @pytest.mark.parametrize("suffix", [".json", ".JSON", ".txt", ""])
    def test_it_is_found_whatever_its_suffix(self, tmp_path: Path, suffix: str) -> None:
        form = tmp_path / "unit-001.form"
        form.write_bytes(b"form")
        (tmp_path / "unit-001.png").write_bytes(b"\x89PNG\r\n")
        report = _write(tmp_path / f"unit-001{suffix}", _report())
        assert report_beside(form, KEY) == (report, _report())

    def test_a_file_not_named_json_that_says_no_build_report_is_left_alone(
        self, tmp_path: Path
    ) -> None:
        _write(tmp_path / "unit-001.txt", {"job_key": KEY, "note": "the operator's own"})
        assert report_beside(tmp_path / "unit-001.form", KEY) is None

    def test_another_builds_report_is_not_this_ones(self, tmp_path: Path) -> None:
        _write(tmp_path / "unit-001.json", _report(job_key="PP-OTHER"))
        mine = _write(tmp_path / "unit-001.txt", _report())
        assert report_beside(tmp_path / "unit-001.form", KEY) == (mine, _report())

    def test_an_unreadable_json_is_told_and_passed_over(self, tmp_path: Path) -> None:
        (tmp_path / "unit-001.json").write_text("{not json", encoding="utf-8")
        (tmp_path / "unit-001.txt").write_text("{not json either", encoding="utf-8")
        told: list[Path] = []
        assert report_beside(tmp_path / "unit-001.form", KEY,
                             lambda path, error: told.append(path)) is None
        assert told == [tmp_path / "unit-001.json"]

    def test_a_users_own_json_of_that_name_is_left_alone(self, tmp_path: Path) -> None:
        # A dict with no job_key was taken for a run without a store's report, and the
        # dispatcher wrote the print's record into the user's file.
        _write(tmp_path / "unit-001.json", {"note": "the operator's own"})
        assert report_beside(tmp_path / "unit-001.form", KEY) is None

    def test_the_json_name_is_tried_first(self, tmp_path: Path) -> None:
        # By name alone ".JSON" and ".txt" sort before or after ".json" as case has it.
        mine = _write(tmp_path / "unit-001.json", _report(steps_done=["json"]))
        _write(tmp_path / "unit-001.JSON", _report(steps_done=["JSON"]))
        _write(tmp_path / "unit-001.a", _report(steps_done=["a"]))
        assert report_beside(tmp_path / "unit-001.form", KEY) == (
            mine, _report(steps_done=["json"]))

    def test_a_large_file_of_that_name_is_not_read_whole(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "unit-001.png").write_bytes(b"\x89PNG\r\n" + bytes(1 << 20))
        mine = _write(tmp_path / "unit-001.txt", _report())
        reads: list[int] = []

        class Counted(io.BufferedReader):
            def read(self, size: int | None = -1) -> bytes:
                got = super().read(size)
                reads.append(len(got))
                return got

        def fdopen(fd: int, mode: str) -> io.BufferedReader:
            return Counted(io.FileIO(fd, "rb"))

        monkeypatch.setattr(os, "fdopen", fdopen)
        assert report_beside(tmp_path / "unit-001.form", KEY) == (mine, _report())
        assert reads and max(reads) < 1024

    @pytest.mark.skipif(not hasattr(os, "mkfifo"),
                        reason="named pipes, devices and modes are POSIX")
    def test_a_named_pipe_of_that_name_does_not_block(self, tmp_path: Path) -> None:
        os.mkfifo(tmp_path / "unit-001.json")
        mine = _write(tmp_path / "unit-001.txt", _report())
        assert report_beside(tmp_path / "unit-001.form", KEY) == (mine, _report())
