"""Files written whole or not at all leave no temporary behind when the write or rename fails."""

from __future__ import annotations

import errno
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from preform_pipeline.atomicfile import write_atomically, write_text_atomically
from preform_pipeline.errors import FileWriteError
from preform_pipeline.executor.runner import BuildJournal
from preform_pipeline.executor.state import AttemptRecord, BuildOutcome, BuildStatus, RunResult
from preform_pipeline.hotfolder.files import write_text_atomic
from preform_pipeline.liveness import ProcessIdentity
from preform_pipeline.report import write_build_report, write_csv_report, write_json_report
from preform_pipeline.servers.records import ServerRecord, ServerRecords

RUN = RunResult(
    run_id="20261204-120000-abcdef",
    recipe="r",
    simulated=True,
    dry_run=True,
    outcomes=(
        BuildOutcome(
            name="r-001", index=1, status=BuildStatus.SUCCEEDED, models=("a.stl",),
            source_files=("/m/a.stl",), attempts=(AttemptRecord(1, "server-1", 1.5),),
            server="server-1",
        ),
    ),
)
IDENTITY = ProcessIdentity(pid=100, create_time=1_700_000_000.25, host="lab-pc")
RECORD = ServerRecord(
    server=IDENTITY, owner=IDENTITY, name="server-1", port=44388, command=("python",),
    started_at=datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
)


def _build_report(path: Path) -> Path:
    return write_build_report(
        RUN.outcomes[0], path.name, {}, path.parent, run_id=RUN.run_id
    )


#: Every writer of the package that renames a temporary into place, given the target's path.
WRITERS: dict[str, Callable[[Path], object]] = {
    "json report": lambda path: write_json_report(RUN, path),
    "csv report": lambda path: write_csv_report(RUN, path),
    "hot-folder note": lambda path: write_text_atomic(path, "failed: x\n"),
    "server record": lambda path: ServerRecords(path.parent).add(RECORD),
    "text": lambda path: write_text_atomically(path, "text\n"),
    "build journal": lambda path: BuildJournal(path.parent, "r-001", RUN.run_id).checkpoint_saved(
        path.parent / "after-auto_support.form", "auto_support", ("auto_support",), ("a.stl",)
    ),
}


def _target(folder: Path, writer: str) -> Path:
    names = {"server record": RECORD.file_name, "build journal": "journal.json"}
    return folder / names.get(writer, "out.json")


class TestABuildReport:
    """A build report takes a free name (executor/outputs.py): nothing at its name is
    replaced, so no rename onto a folder is ever tried."""

    def test_a_second_report_of_one_name_keeps_the_first(self, tmp_path: Path) -> None:
        # Session 42: every run from cron names its first build -001, and its report
        # replaced the report of the day's earlier run.
        first, second = _build_report(tmp_path / "r-001.json"), _build_report(
            tmp_path / "r-001.json")
        assert (first.name, second.name) == ("r-001.json", "r-001-2.json")

    def test_a_folder_at_its_name_is_left_and_the_next_name_taken(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "r-001.json").mkdir()
        (tmp_path / "r-001.json" / "kept.txt").write_text("the user's", encoding="utf-8")
        written = _build_report(tmp_path / "r-001.json")
        assert written == tmp_path / "r-001-2.json" and written.stat().st_size > 0
        assert (tmp_path / "r-001.json" / "kept.txt").read_text(encoding="utf-8") == (
            "the user's")


class TestARenameThatFails:
    """A folder where the file should go: the error names the path, and no temporary stays."""

    @pytest.mark.parametrize("writer", sorted(WRITERS))
    def test_no_temporary_remains_and_the_error_names_the_path(
        self, tmp_path: Path, writer: str
    ) -> None:
        target = _target(tmp_path, writer)
        (target / "kept.txt").parent.mkdir()
        (target / "kept.txt").write_text("the user's", encoding="utf-8")
        with pytest.raises(FileWriteError) as caught:
            WRITERS[writer](target)
        assert caught.value.path == target
        assert str(target) in str(caught.value)
        assert "folder has the file's name" in caught.value.hint
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [
            Path(target.name), Path(target.name) / "kept.txt"
        ]
        assert (target / "kept.txt").read_text(encoding="utf-8") == "the user's"

    def test_the_error_is_an_os_error_too_with_the_causes_errno(self, tmp_path: Path) -> None:
        (tmp_path / "out.json").mkdir()
        with pytest.raises(OSError) as caught:
            write_text_atomically(tmp_path / "out.json", "{}")
        assert isinstance(caught.value, FileWriteError)
        assert caught.value.errno == errno.EISDIR  # Linux's answer to a rename onto a folder


class TestAWriteThatFails:
    """A write that fails half-way removes its temporary and leaves the old file whole."""

    def test_text_that_cannot_be_encoded_leaves_the_old_file(self, tmp_path: Path) -> None:
        target = tmp_path / "note.txt"
        target.write_text("old\n", encoding="utf-8")
        with pytest.raises(UnicodeEncodeError):
            write_text_atomically(target, "new \ud800\n")
        assert [p.name for p in tmp_path.iterdir()] == ["note.txt"]
        assert target.read_text(encoding="utf-8") == "old\n"

    def test_a_writer_that_stops_partway_leaves_nothing(self, tmp_path: Path) -> None:
        def half(temporary: Path) -> None:
            temporary.write_text("half", encoding="utf-8")
            # A real OS refusal half-way: opening a folder of the same tree for writing.
            (tmp_path / "sub").mkdir()
            (tmp_path / "sub").open("w")

        with pytest.raises(FileWriteError) as caught:
            write_atomically(tmp_path / "out.bin", half)
        assert caught.value.reason.startswith("writing failed")
        assert [p.name for p in tmp_path.iterdir()] == ["sub"]


class TestAFolderThatCannotBeMade:
    """A file standing where the target's folder should be is named in the hint."""

    def test_a_file_in_place_of_the_folder(self, tmp_path: Path) -> None:
        (tmp_path / "reports").write_text("", encoding="utf-8")
        target = tmp_path / "reports" / "run.json"
        with pytest.raises(FileWriteError) as caught:
            write_json_report(RUN, target)
        assert caught.value.path == target
        assert caught.value.reason.startswith("making its folder failed")
        assert "a file stands where a folder" in caught.value.hint
        assert [p.name for p in tmp_path.iterdir()] == ["reports"]

    def test_a_caller_that_made_the_folder_once_is_not_given_a_new_one(
        self, tmp_path: Path
    ) -> None:
        target = tmp_path / "gone" / "journal.json"
        with pytest.raises(FileWriteError) as caught:
            write_text_atomically(target, "{}", make_folder=False)
        assert caught.value.reason.startswith("writing failed")
        assert list(tmp_path.iterdir()) == []
