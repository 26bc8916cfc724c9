"""A run's files: complete models taken, files being written left, unsupported ones listed."""

from __future__ import annotations

import os
from pathlib import Path

from preform_pipeline.geometry import write_obj, write_stl
from preform_pipeline.plan.advice import by_name
from preform_pipeline.plan.sources import find_sources
from tests.unit.plan.planning_factories import box_triangles

NOW = 2_000_000_000.0


def _aged(path: Path, seconds: float) -> Path:
    os.utime(path, (NOW - seconds, NOW - seconds))
    return path


class TestSources:
    """Each file is taken, left for later or listed with what to do; none is dropped."""

    def test_files_are_sorted_with_reasons(self, tmp_path: Path) -> None:
        case = tmp_path / "C-1"
        case.mkdir()
        stl = case / "whole.stl"
        write_stl(stl, box_triangles(10, 10, 10))
        _aged(stl, 1)  # just written, but the format says it is complete
        half = case / "half.stl"
        half.write_bytes(stl.read_bytes()[:300])
        _aged(half, 1)
        stalled = case / "stalled.stl"
        stalled.write_bytes(stl.read_bytes()[:300])
        _aged(stalled, 3600)
        fresh_obj = case / "fresh.obj"
        write_obj(fresh_obj, box_triangles(10, 10, 10))
        _aged(fresh_obj, 1)
        old_obj = case / "old.obj"
        write_obj(old_obj, box_triangles(10, 10, 10))
        _aged(old_obj, 60)
        (case / "bracket.STEP").write_text("ISO-10303-21;", encoding="utf-8")
        (case / "scan.ply").write_text("ply", encoding="utf-8")
        (case / "big.stl.part").write_bytes(b"x")
        (case / "C-1.json").write_text("{}", encoding="utf-8")
        (case / ".DS_Store").write_bytes(b"x")

        # The named folder's own files, judged one by one (a cron run's inbox), loose: no
        # case id.
        found = find_sources([case], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert found.models == {
            old_obj: None, stalled: None, stl: None,
        }
        waiting = {p.name: why for p, why in found.waiting}
        assert set(waiting) == {"half.stl", "fresh.obj", "big.stl.part"}
        assert "STL is incomplete" in waiting["half.stl"]
        assert "5 s without change" in waiting["fresh.obj"]
        unsupported = {p.name: why for p, why in found.unsupported}
        # Each said as the hot folder's intake says it (test_plan_advice.py).
        assert unsupported == {"bracket.STEP": by_name(case / "bracket.STEP").said,
                               "scan.ply": by_name(case / "scan.ply").said}
        assert unsupported["bracket.STEP"].startswith(".STEP is a CAD file")

    def test_a_case_folder_waits_whole_for_its_file_being_written(
        self, tmp_path: Path
    ) -> None:
        # Session 30: `run recipe inbox/` took C-1042's complete upper arch alone while its
        # lower arch was still being copied; the next run printed the lower one alone.
        inbox = tmp_path / "inbox"
        upper, lower = inbox / "C-1042" / "upper.stl", inbox / "C-1042" / "lower.stl"
        upper.parent.mkdir(parents=True)
        write_stl(upper, box_triangles(10, 10, 10))
        lower.write_bytes(upper.read_bytes()[:300])
        other = inbox / "C-1043" / "upper.stl"
        other.parent.mkdir()
        write_stl(other, box_triangles(10, 10, 10))
        loose = inbox / "loose.stl"
        write_stl(loose, box_triangles(10, 10, 10))
        for path in (upper, lower, other, loose):
            _aged(path, 1)

        found = find_sources([inbox], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert found.models == {other: "C-1043", loose: None}
        waiting = dict(found.waiting)
        assert set(waiting) == {upper, lower}
        assert waiting[upper] == "its case folder C-1042 waits for lower.stl, still being written"
        assert "STL is incomplete" in waiting[lower]

        lower.write_bytes(upper.read_bytes())
        _aged(lower, 1)
        found = find_sources([inbox], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert found.models == {upper: "C-1042", lower: "C-1042", other: "C-1043",
                                loose: None}

    def test_a_named_missing_file_is_kept_for_the_reader_to_report(
        self, tmp_path: Path
    ) -> None:
        missing = tmp_path / "gone.stl"
        found = find_sources([missing], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert found.models == {missing: None}

    def test_the_runs_own_output_folder_is_not_searched(self, tmp_path: Path) -> None:
        # Session 30: `run recipe share --output share/out` rejected its own log file as
        # "not a model file" and exited 1; a second run would reject its .form files too.
        share = tmp_path / "share"
        part = share / "part.stl"
        part.parent.mkdir()
        write_stl(part, box_triangles(10, 10, 10))
        out = share / "out"
        (out / "logs").mkdir(parents=True)
        (out / "logs" / "run.jsonl").write_text("{}\n", encoding="utf-8")
        (out / "build-001.form").write_bytes(b"PK")
        sibling = tmp_path / "share" / "outside"
        sibling.mkdir()
        (sibling / "notes.txt").write_text("x", encoding="utf-8")

        found = find_sources([share], quiet_period_s=5, incomplete_timeout_s=600, now=NOW,
                             skip=[out])
        assert found.models == {part: None}
        assert found.waiting == ()
        assert [p.name for p, _ in found.unsupported] == ["notes.txt"]


class TestANamedCaseFolder:
    """A named folder given in ``cases`` waits whole; named alone it is an inbox of files."""

    def test_its_complete_files_wait_for_the_one_still_being_written(
        self, tmp_path: Path
    ) -> None:
        case = tmp_path / "C-1"
        case.mkdir()
        whole = case / "upper.stl"
        write_stl(whole, box_triangles(10, 10, 10))
        _aged(whole, 60)
        half = case / "lower.stl"
        half.write_bytes(whole.read_bytes()[:300])
        _aged(half, 1)
        other = tmp_path / "other"
        other.mkdir()
        alone = other / "part.stl"
        write_stl(alone, box_triangles(10, 10, 10))
        found = find_sources([case, other], quiet_period_s=5, incomplete_timeout_s=600,
                             now=NOW, cases=[case])
        assert found.models == {alone: None}
        assert dict(found.waiting)[whole] == (
            "its case folder C-1 waits for lower.stl, still being written")
        inbox = find_sources([case], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert inbox.models == {whole: None}


class TestASubfolderOfACaseFolder:
    """A file in a subfolder of a case folder is that case's, as the hot folder takes a
    dropped folder whole: its case id, its sidecar and its waiting are the case folder's."""

    def _case(self, inbox: Path) -> tuple[Path, Path]:
        upper, lower = inbox / "C-7" / "upper.stl", inbox / "C-7" / "scans" / "lower.stl"
        lower.parent.mkdir(parents=True)
        write_stl(upper, box_triangles(10, 10, 10))
        write_stl(lower, box_triangles(10, 10, 10))
        for path in (upper, lower):
            _aged(path, 60)
        return upper, lower

    def test_its_files_take_the_case_folders_id_and_folder(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        upper, lower = self._case(inbox)
        loose = inbox / "loose.stl"
        write_stl(loose, box_triangles(10, 10, 10))
        _aged(loose, 60)
        found = find_sources([inbox], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert found.models == {upper: "C-7", lower: "C-7", loose: None}
        assert found.case_folders == {upper: inbox / "C-7", lower: inbox / "C-7", loose: None}

    def test_the_case_waits_for_a_file_of_its_subfolder(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        upper, lower = self._case(inbox)
        lower.write_bytes(upper.read_bytes()[:300])
        _aged(lower, 1)
        found = find_sources([inbox], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert found.models == {}
        assert dict(found.waiting)[upper] == (
            "its case folder C-7 waits for lower.stl, still being written")

    def test_a_named_case_folder_holds_its_subfolders_too(self, tmp_path: Path) -> None:
        upper, lower = self._case(tmp_path)
        case = tmp_path / "C-7"
        found = find_sources([case], quiet_period_s=5, incomplete_timeout_s=600, now=NOW,
                             cases=[case])
        assert found.models == {upper: "C-7", lower: "C-7"}
        assert found.case_folders == {upper: case, lower: case}
        # Named alone, unmarked, it is an inbox: its subfolder is a case of its own.
        inbox = find_sources([case], quiet_period_s=5, incomplete_timeout_s=600, now=NOW)
        assert inbox.models == {upper: None, lower: "scans"}
        assert inbox.case_folders == {upper: None, lower: case / "scans"}
