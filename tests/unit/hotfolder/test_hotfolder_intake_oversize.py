"""A model file over the readers' size limit is refused by its ``stat`` size, unread.

Session 37 found the hot folder hashing a dropped file whole before anything refused its
size: a 20 GB file dropped by mistake cost minutes of disk before "too large". The files
here are sparse (``truncate``: no disk, made at once), and that they are not read is
measured, not timed: the bytes this process read through ``read`` calls (``rchar`` of
``/proc/self/io``) stay far below the file's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.commands._sources import take_sources
from preform_pipeline.errors import ModelFileError
from preform_pipeline.geometry.bounded import (
    DEFAULT_MAX_MODEL_FILE_BYTES,
    TOO_LARGE_HINT,
    checked_file_size,
)
from preform_pipeline.hotfolder.intake import Drop, Intake
from preform_pipeline.hotfolder.nodes import drop_hash
from preform_pipeline.hotfolder.testing import tetra_stl_bytes
from preform_pipeline.plan.held import HELD_HINT
from preform_pipeline.recipes import load_recipe
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.settings.run import RunSettings
from preform_pipeline.store import JobState, SqliteJobStore

pytestmark = pytest.mark.skipif(not Path("/proc/self/io").exists(),
                                reason="reads are counted by Linux's /proc/self/io")

#: 64 MiB over the limit: read whole, it would be counted many times over the bound below.
SIZE = DEFAULT_MAX_MODEL_FILE_BYTES + 64 * 1024 * 1024
#: More than the store, the notes and the small file read; far less than the big file.
READ_BOUND = 16 * 1024 * 1024
REASON = "big.stl: file is 576.0 MiB, over the 512.0 MiB limit for model files"
TODO = ("reduce (decimate) the mesh or split the model; the limit is built in (no setting "
        "raises it), then drop it again")


def _sparse(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(SIZE)
    return path


def _read_so_far() -> int:
    for line in Path("/proc/self/io").read_text(encoding="ascii").splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@contextmanager
def _reads() -> Iterator[list[int]]:
    """The bytes read by this process inside the block, in the list once it ends."""
    got: list[int] = []
    before = _read_so_far()
    yield got
    got.append(_read_so_far() - before)


class TestTheIntake:
    """The case holding the large file is refused whole, with the limit, the rule `run`'s
    readers use, and what helps; nothing of the file is read."""

    def test_a_case_with_a_file_over_the_limit_is_refused_unread(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        root = inbox.path / "C-9"
        big = _sparse(root / "big.stl")
        (root / "small.stl").write_bytes(tetra_stl_bytes())
        drop = Drop(inbox, root, "r", True, models=(big, root / "small.stl"))
        with _reads() as read:
            result = Intake(store, [inbox]).take(drop)
        assert read[0] < READ_BOUND, f"{read[0]} bytes read"
        assert result.taken == ()
        assert [(j.state, j.reason) for j in result.rejected] == [
            (JobState.FAILED, REASON),
            (JobState.FAILED, "held with its case C-9: big.stl cannot be prepared, and a case "
                              "prints whole or not at all")]
        failed = inbox.folder("failed") / "C-9"
        note = (failed / "big.stl.error.txt").read_text(encoding="utf-8")
        assert note.startswith(f"What failed: {REASON}\n")
        assert f"What to do: {TODO}\n" in note
        assert (failed / "big.stl").stat().st_size == SIZE  # kept whole
        assert (failed / "small.stl").read_bytes() == tetra_stl_bytes()

    def test_a_loose_file_over_the_limit_is_refused_alone(
        self, store: SqliteJobStore, inbox: InboxSettings
    ) -> None:
        # A loose file is a case of its own: refused, with no case to hold or name.
        big = _sparse(inbox.path / "big.stl")
        with capture_logs() as logs:
            result = Intake(store, [inbox]).take(Drop(inbox, big, "r", False, models=(big,)))
        assert [(j.state, j.reason, j.case_id) for j in result.rejected] == [
            (JobState.FAILED, REASON, None)]
        assert (inbox.folder("failed") / "big.stl").stat().st_size == SIZE
        [held] = [e for e in logs if e["event"] == "case_held"]
        assert (held["case_id"], held["bad"], held["held"]) == (None, ["big.stl"], [])

    def test_run_and_the_hot_folder_say_the_same(self, tmp_path: Path) -> None:
        # One rule: the readers' refusal is the intake's, word for word.
        with pytest.raises(ModelFileError) as caught:
            checked_file_size(_sparse(tmp_path / "big.stl"))
        assert f"big.stl: {caught.value.reason}" == REASON
        assert f"What to do: {caught.value.hint}, then drop it again" == f"What to do: {TODO}"


class TestRunAndPlan:
    """`run` and `plan` (:func:`take_sources`) refuse the case holding the large file whole,
    as the hot folder does: taken without it, the rest of the case would print apart."""

    def test_the_case_is_refused_whole(self, tmp_path: Path) -> None:
        inbox = tmp_path / "inbox"
        big = _sparse(inbox / "C-9" / "big.stl")
        repo = Path(__file__).parents[3]
        good = (repo / "sample_models" / "batch" / "part_01.stl").read_bytes()  # doable
        small = inbox / "C-9" / "small.stl"
        small.write_bytes(good)
        other = inbox / "C-1" / "part.stl"
        other.parent.mkdir()
        other.write_bytes(good)
        recipe = load_recipe(repo / "recipes" / "dental-models-form4.yaml")
        as_they_are = RunSettings(quiet_period_s=0.0, incomplete_timeout_s=0.0)
        with _reads() as read:
            taken = take_sources([inbox], recipe, rules=as_they_are,
                                 started_at=datetime(2026, 12, 6))
        assert read[0] < READ_BOUND, f"{read[0]} bytes read"
        assert [m.path for m in taken.models] == [other]  # the other cases go on
        reason = f"{big}: file is 576.0 MiB, over the 512.0 MiB limit for model files"
        assert {r.path: r.reason for r in taken.rejected} == {
            big: f"{reason} ({TOO_LARGE_HINT})",
            small: f"{small}: held with its case C-9: big.stl cannot be prepared, and a "
                   f"case prints whole or not at all; {HELD_HINT}",
        }


class TestTheFarmClaim:
    """A farm node claims a drop by a hash of its files before taking it: a file over the
    limit is named by its size and change time, not read."""

    def test_a_file_over_the_limit_is_claimed_unread(
        self, tmp_path: Path, inbox: InboxSettings
    ) -> None:
        big = _sparse(inbox.path / "big.stl")
        drop = Drop(inbox, big, "r", False, models=(big,))
        with _reads() as read:
            first = drop_hash(drop)
        assert read[0] < READ_BOUND, f"{read[0]} bytes read"
        assert drop_hash(drop) == first  # every node names it alike
        small = inbox.path / "small.stl"
        small.write_bytes(tetra_stl_bytes())
        assert drop_hash(Drop(inbox, small, "r", False, models=(small,))).startswith("sha256:")
