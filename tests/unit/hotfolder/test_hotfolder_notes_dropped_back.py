"""A case (or a lone file) moved back into the inbox from failed/ or done/ brings the notes this
hot folder wrote there: they are not drops.

A failed case's note says "fix the sidecar, then drop the whole case folder into the inbox
again"; a user who did just that carried ``gear.stl.error.txt`` back in, and the daemon took it
as a drop: failed as "``.txt`` is not a model file", with a ``gear.stl.error.txt.error.txt``
of its own in failed/. Now a note of ours (an ``.error.txt`` that begins as ours do, a job
report) is removed when its case is taken, an event naming it; what it said is in the job
store. A file that only has such a name is a user's, and is treated as any other file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from cut_support import daemon_started_once, inbox_across, killed_mid_move
from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.hotfolder import Drop, Intake
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.settings.hotfolder import InboxSettings, OutcomeFolders
from preform_pipeline.store import JobState, SqliteJobStore

NOT_A_MODEL = ".txt is not a model file"


def _events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def _watch_once(tmp_path: Path, store: SqliteJobStore, script: Script,
                recipe: Path) -> list[Any]:
    """One ``watch --once`` of the real daemon; its structured log events."""
    with capture_logs() as logs:
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
    return logs


def _left_in_inbox(inbox: Path) -> list[str]:
    """What is in the inbox outside its outcome folders."""
    return sorted(p.name for p in inbox.iterdir()
                  if p.name not in ("processing", "done", "failed"))


class TestACaseDroppedBackAfterItsFix:
    """The note's own advice, followed: the case prints, and no old note is left anywhere."""

    def test_the_fixed_case_prints_and_its_old_note_is_gone(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        case = inbox / "C-9"
        case.mkdir(parents=True)
        (case / "gear.stl").write_bytes(tetra_stl_bytes(9))
        (case / "gear.yaml").write_text("priorty: 3\n", encoding="utf-8")
        _watch_once(tmp_path, store, script, recipe)
        failed = inbox / "failed"
        assert names(failed) == ["C-9/gear.stl", "C-9/gear.stl.error.txt", "C-9/gear.yaml"]
        (failed / "C-9" / "gear.yaml").write_text("priority: 3\n", encoding="utf-8")
        (failed / "C-9").rename(case)
        logs = _watch_once(tmp_path, store, script, recipe)
        assert names(inbox / "done") == [
            "C-9/gear.stl", "C-9/gear.stl.report.json", "C-9/gear.yaml"]
        assert names(failed) == []
        assert _left_in_inbox(inbox) == []
        (removed,) = _events(logs, "old_note_removed")
        assert removed["path"] == str(case / "gear.stl.error.txt")
        assert "jobs show" in removed["hint"]
        printed = store.list_jobs(state=JobState.PRINT_SENT)
        assert [(j.original_name, j.case_id, j.priority) for j in printed] == [
            ("gear.stl", "C-9", 3)]
        # What the removed note said is still in the job store.
        (first,) = store.list_jobs(state=JobState.FAILED)
        assert first.reason is not None and "priorty" in first.reason

    def test_a_lone_file_dropped_back_with_its_note_prints(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "part.stl").write_bytes(tetra_stl_bytes(4))
        (inbox / "part.yaml").write_text("priorty: 3\n", encoding="utf-8")
        _watch_once(tmp_path, store, script, recipe)
        failed = inbox / "failed"
        assert names(failed) == ["part.stl", "part.stl.error.txt", "part.yaml"]
        (failed / "part.yaml").write_text("priority: 3\n", encoding="utf-8")
        for name in names(failed):
            (failed / name).rename(inbox / name)
        logs = _watch_once(tmp_path, store, script, recipe)
        assert names(inbox / "done") == ["part.stl", "part.stl.report.json", "part.yaml"]
        assert names(failed) == []
        assert _left_in_inbox(inbox) == []
        assert [e["path"] for e in _events(logs, "old_note_removed")] == [
            str(inbox / "part.stl.error.txt")]


class TestAnOutcomeDroppedBackFromDone:
    """A printed case (or file) put back to print again brings its report: the report is not
    a stray sidecar, and is not carried to failed/ beside the skipped duplicate's note."""

    def test_a_case_put_back_keeps_no_old_report(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        case = inbox / "C-1"
        case.mkdir(parents=True)
        (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
        _watch_once(tmp_path, store, script, recipe)
        done = inbox / "done"
        assert names(done) == ["C-1/upper.stl", "C-1/upper.stl.report.json"]
        (done / "C-1").rename(case)
        logs = _watch_once(tmp_path, store, script, recipe)
        failed = inbox / "failed"
        assert names(failed) == ["C-1/upper.stl", "C-1/upper.stl.error.txt"]
        assert "the same content was already taken" in (
            failed / "C-1" / "upper.stl.error.txt").read_text(encoding="utf-8")
        assert names(done) == []
        assert _left_in_inbox(inbox) == []
        assert [e["path"] for e in _events(logs, "old_note_removed")] == [
            str(case / "upper.stl.report.json")]

    def test_a_lone_report_put_back_is_removed_at_once(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path
    ) -> None:
        """Not held as a sidecar waiting for its model (incomplete_timeout_s, 10 minutes)."""
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "part.stl").write_bytes(tetra_stl_bytes(5))
        _watch_once(tmp_path, store, script, recipe)
        done = inbox / "done"
        for name in names(done):
            (done / name).rename(inbox / name)
        logs = _watch_once(tmp_path, store, script, recipe)
        assert names(inbox / "failed") == ["part.stl", "part.stl.error.txt"]
        assert _left_in_inbox(inbox) == []
        assert [e["path"] for e in _events(logs, "old_note_removed")] == [
            str(inbox / "part.stl.report.json")]


def _case_with(inbox: InboxSettings, others: Mapping[str, bytes]) -> Drop:
    root = inbox.path / "C-5"
    root.mkdir()
    (root / "upper.stl").write_bytes(tetra_stl_bytes(5))
    paths = []
    for name, data in others.items():
        (root / name).write_bytes(data)
        paths.append(root / name)
    return Drop(inbox, root, "r", True, models=(root / "upper.stl",), others=tuple(paths))


def _report(**changes: Any) -> bytes:
    """A job report as the hot folder writes one, its fields changed (None: left out)."""
    data: dict[str, Any] = {"format": "preform-pipeline-hotfolder-job", "job_key": "PP-1",
                            "recipe": "r", "state": "print_sent", "file": "upper.stl"}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


OUR_NOTE = b"What failed: bad sidecar\nWhere: taking the file from the inbox\n"


class TestFilesThatOnlyHaveTheNameOfANote:
    """A user's own file named like a note is a file like any other: rejected with the
    clear reason, kept in failed/; never removed."""

    @pytest.mark.parametrize(("name", "data"), [
        ("readme.error.txt", b"What went wrong: the left tooth\n"),
        ("readme.error.txt", b"what failed: (lower case: not ours)\n"),
        ("upper.stl.report.json", _report(format="preform-pipeline-run-report")),
        ("upper.stl.report.json", _report(file=None)),
        ("upper.stl.report.json", _report(job_key=None)),
        ("upper.stl.report.json", b'["preform-pipeline-hotfolder-job"]'),
        ("upper.stl.report.json", b"\xff" + _report()),
        ("upper.stl.report.json", _report(fields={"note": "x" * (1 << 20)})),
        ("upper.stl.txt", OUR_NOTE),
    ], ids=["other-text", "lower-case", "run-report", "no-file", "no-job-key", "a-list",
            "not-utf8", "over-a-mebibyte", "another-suffix"])
    def test_it_is_rejected_and_kept(
        self, store: SqliteJobStore, inbox: InboxSettings, name: str, data: bytes
    ) -> None:
        drop = _case_with(inbox, {name: data})
        with capture_logs() as logs:
            result = Intake(store, [inbox]).take(drop)
        assert [j.original_name for j in result.taken] == ["upper.stl"]
        assert [j.original_name for j in result.rejected] == [name]
        kept = inbox.folder("failed") / "C-5" / name
        assert kept.read_bytes() == data
        assert kept.with_name(name + ".error.txt").exists()
        assert _events(logs, "old_note_removed") == []

    @pytest.mark.parametrize("data", [
        _report(format="preform-pipeline-run-report"), b'{"my": "notes"}', b"not json",
    ], ids=["run-report", "other-json", "not-json"])
    def test_one_dropped_alone_is_refused_on_the_first_run_not_after_ten_minutes(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, recipe: Path, data: bytes
    ) -> None:
        """No model waits for a report's name: not held as a lone sidecar (incomplete_timeout_s)."""
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "x.report.json").write_bytes(data)
        logs = _watch_once(tmp_path, store, script, recipe)
        failed = inbox / "failed"
        assert names(failed) == ["x.report.json", "x.report.json.error.txt"]
        assert (failed / "x.report.json").read_bytes() == data
        note = (failed / "x.report.json.error.txt").read_text(encoding="utf-8")
        assert note.startswith("What failed: x.report.json is not a job report of this hot "
                               "folder, nor a model file (preform-pipeline prepares .stl, "
                               ".obj and .3mf)\n")
        assert "What to do: keep your own files out of the inbox" in note
        assert _left_in_inbox(inbox) == [] and _events(logs, "old_note_removed") == []

    def test_a_link_to_one_of_our_notes_is_not_a_note(
        self, store: SqliteJobStore, inbox: InboxSettings, tmp_path: Path
    ) -> None:
        ours = tmp_path / "elsewhere.error.txt"
        ours.write_bytes(OUR_NOTE)
        drop = _case_with(inbox, {})
        link = drop.root / "upper.stl.error.txt"
        link.symlink_to(ours)
        Intake(store, [inbox]).take(Drop(inbox, drop.root, "r", True, models=drop.models,
                                         others=(link,)))
        moved = inbox.folder("failed") / "C-5" / "upper.stl.error.txt"
        assert moved.is_symlink() and ours.read_bytes() == OUR_NOTE
        assert NOT_A_MODEL in moved.with_name(moved.name + ".error.txt").read_text("utf-8")


class TestNotesOfOurs:
    """Each kind of note this hot folder writes is recognised, and only removed."""

    @pytest.mark.parametrize(("name", "data"), [
        ("upper.stl.error.txt", OUR_NOTE),
        ("upper.stl.report.json", _report()),
    ], ids=["error-note", "report"])
    def test_it_is_removed_and_the_model_taken(
        self, store: SqliteJobStore, inbox: InboxSettings, name: str, data: bytes
    ) -> None:
        drop = _case_with(inbox, {name: data})
        with capture_logs() as logs:
            result = Intake(store, [inbox]).take(drop)
        assert [j.original_name for j in result.taken] == ["upper.stl"]
        assert result.rejected == ()
        assert names(inbox.folder("failed")) == []
        assert not drop.root.exists()
        (removed,) = _events(logs, "old_note_removed")
        assert removed["path"] == str(drop.root / name)
        assert removed["log_level"] == "info"
        assert removed["reason"] == "a note of an earlier outcome, dropped back with its file"
        assert removed["hint"] == ("what it said is kept in the job store: "
                                   "preform-pipeline jobs show <job key or case id>")

    def test_a_note_after_a_users_file_is_removed_too(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case_with(inbox, {"scan.pdf": b"%PDF", "upper.stl.error.txt": OUR_NOTE})
        with capture_logs() as logs:
            result = Intake(store, [inbox]).take(drop)
        assert [j.original_name for j in result.rejected] == ["scan.pdf"]
        assert names(inbox.folder("failed")) == ["C-5/scan.pdf", "C-5/scan.pdf.error.txt"]
        assert not drop.root.exists()
        assert [e["path"] for e in _events(logs, "old_note_removed")] == [
            str(drop.root / "upper.stl.error.txt")]

    def test_one_that_cannot_be_removed_stays_and_says_so(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        def refuse(path: Path) -> None:
            raise PermissionError(13, "Permission denied", str(path))

        drop = _case_with(inbox, {"upper.stl.error.txt": OUR_NOTE, "scan.pdf": b"%PDF"})
        with capture_logs() as logs:
            result = Intake(store, [inbox], remove=refuse).take(drop)
        # The files after it are dealt with as ever: the PDF is refused.
        assert [j.original_name for j in result.rejected] == ["scan.pdf"]
        assert names(inbox.folder("failed")) == ["C-5/scan.pdf", "C-5/scan.pdf.error.txt"]
        assert names(drop.root) == ["upper.stl.error.txt"]
        (warning,) = _events(logs, "old_note_not_removed")
        assert warning["path"] == str(drop.root / "upper.stl.error.txt")
        assert "Permission denied" in warning["error"]
        assert warning["hint"] == "remove it by hand: it is an old note, not a drop"
        assert warning["log_level"] == "warning"
        assert _events(logs, "old_note_removed") == []

    def test_one_gone_meanwhile_is_no_drop_and_no_news(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        drop = _case_with(inbox, {"upper.stl.error.txt": OUR_NOTE, "scan.pdf": b"%PDF"})

        def gone(path: Path) -> None:
            path.unlink()
            raise FileNotFoundError(2, "No such file or directory", str(path))

        with capture_logs() as logs:
            result = Intake(store, [inbox], remove=gone).take(drop)
        assert [j.original_name for j in result.rejected] == ["scan.pdf"]
        assert not drop.root.exists()
        assert _events(logs, "old_note_removed") == []
        assert _events(logs, "old_note_not_removed") == []


class TestATakeCutShort:
    """A case dropped back with its note, its take killed after the first model's move into
    a processing/ on another disk: the next life takes the rest, and the note is gone."""

    def test_the_next_life_leaves_no_note_and_no_case_folder(
        self, tmp_path: Path, python_exe: str, database: Path, other_disk: Path,
        script: Script, recipe: Path
    ) -> None:
        inbox = inbox_across(
            tmp_path, OutcomeFolders(processing=str(other_disk / "processing")))
        case = inbox.path / "C-7"
        case.mkdir()
        (case / "a.stl").write_bytes(tetra_stl_bytes(71))
        (case / "b.stl").write_bytes(tetra_stl_bytes(72))
        (case / "a.stl.error.txt").write_bytes(OUR_NOTE)
        killed_mid_move(python_exe, database, inbox, kill_in=inbox.folder("processing"),
                        kill_below=True, case="C-7")
        logs = daemon_started_once(tmp_path, database, script, recipe, inbox)
        assert names(inbox.folder("done")) == [
            "C-7/a.stl", "C-7/a.stl.report.json", "C-7/b.stl", "C-7/b.stl.report.json"]
        assert names(inbox.folder("failed")) == []
        assert not case.exists()
        assert _events(logs, "take_failed") == []
