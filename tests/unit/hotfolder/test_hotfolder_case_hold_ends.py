"""A case hold ends with its folder (hotfolder/caseholds.py; daemon ``_judge_empty`` and
``_forget_gone_holds``): real folders, a real SQLite store, the real daemon in-process.

A part whose name is not UTF-8 is set aside at first sight and holds its case in the job
store, keyed by the folder's path and valued by its inode (and, since session 43's review,
its files: a renamed folder keeps them, a new one that got the inode back has not). Until
session 41 such a hold outlived its case in two ways: a folder whose only part was set aside
stayed in the inbox, empty and held, so the fixed case copied back into it went to failed/
whole; and the holds of a folder removed from the inbox stayed, so a folder made again under
its name that got the old inode back (ext4 reuses them) was held by them.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder import intake as intake_module
from preform_pipeline.hotfolder.caseholds import HOLD_NOTICE
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.files import ERROR_SUFFIX
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.store import JobState, JobStore, SqliteJobStore

BAD = os.fsdecode(b"lower\xff.stl")  # (a name the job store cannot record)
#: The inbox's settle window in these tests (the manual clock moves it).
QUIET_S = 5.0


def _holds(store: JobStore) -> tuple[str, ...]:
    return store.notice_keys(f"{HOLD_NOTICE} ")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def daemon(tmp_path: Path, store: SqliteJobStore, clock: ManualClock) -> HotFolderDaemon:
    """The daemon, its loop driven look by look (:func:`_look`) on the manual clock."""
    return make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                       write_recipe(tmp_path, printer=None),
                       inbox={"quiet_period_s": QUIET_S}, clock=clock)


def _look(daemon: HotFolderDaemon, clock: ManualClock, after_s: float = 0.0) -> None:
    """One look of the daemon's loop at its inbox, ``after_s`` seconds after the last."""
    clock.advance(after_s)
    daemon._rescan()
    daemon._check_units()


def _only_a_bad_part(tmp_path: Path) -> Path:
    """Case folder C-1 with one part, whose name is not UTF-8 (set aside at first sight)."""
    case = tmp_path / "inbox" / "C-1"
    case.mkdir(parents=True)
    (case / BAD).write_bytes(tetra_stl_bytes(2))
    return case


def _a_case_with_a_bad_part(case: Path) -> Path:
    """Case folder ``case`` (made): upper.stl, and a part whose name holds the case."""
    case.mkdir(parents=True)
    (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
    (case / BAD).write_bytes(tetra_stl_bytes(2))
    return case


def _routed(tmp_path: Path, store: SqliteJobStore, clock: ManualClock) -> HotFolderDaemon:
    """The daemon, with route folder ``other`` in its inbox (for recipe ``other``)."""
    other = write_recipe(tmp_path, name="other", printer=None)
    return make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"),
                       write_recipe(tmp_path, printer=None), clock=clock,
                       inbox={"quiet_period_s": QUIET_S, "routes": (other,)})


class TestAFolderWhosePartsWereAllSetAside:
    """Its case went to failed/ whole: once the folder is empty and quiet for the settle
    window, its holds are forgotten and the folder leaves the inbox; files put there later
    are a new case."""

    def test_the_fixed_case_put_back_prints(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        case = _only_a_bad_part(tmp_path)
        with capture_logs() as logs:
            _look(daemon, clock)
            assert case.is_dir() and len(_holds(store)) == 1  # set aside, held
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert not case.exists() and _holds(store) == ()
        assert names(tmp_path / "inbox" / "failed") == [f"C-1/{BAD}", f"C-1/{BAD}{ERROR_SUFFIX}"]
        (forgotten,) = [e for e in logs if e["event"] == "case_holds_forgotten"]
        assert (forgotten["root"], forgotten["parts"]) == (str(case), ["lower\\xff.stl"])
        assert forgotten["reason"].startswith("every part of it was set aside")
        (removed,) = [e for e in logs if e["event"] == "case_folder_removed"]
        assert removed["reason"] == forgotten["reason"]

        # The user renames the part and puts the case back where it was.
        case.mkdir()
        (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
        (case / "lower.stl").write_bytes(tetra_stl_bytes(2))
        run_daemon_once(make_daemon(tmp_path, store, Script(tmp_path / "fleet"),
                                    write_recipe(tmp_path, printer=None)))
        assert names(tmp_path / "inbox" / "done") == sorted(
            f"C-1/{n}{s}" for n in ("lower.stl", "upper.stl") for s in ("", ".report.json"))
        (build,) = {j.build_id for j in store.list_jobs()}  # one build, both parts
        assert build is not None

    def test_a_case_whose_rest_is_still_being_copied_in_stays_held(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        """Empty for less than the settle window is not empty: the rest of a case copied in
        file by file (the badly named part first) is held with it."""
        case = _only_a_bad_part(tmp_path)
        with capture_logs() as logs:
            _look(daemon, clock)
            _look(daemon, clock, after_s=QUIET_S - 1)  # empty, not quiet yet
            case.mkdir(exist_ok=True)  # (as a copy does: it makes the folder if gone)
            (case / "upper.stl").write_bytes(tetra_stl_bytes(1))  # the copy goes on
            _look(daemon, clock, after_s=1.5)
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert not case.exists() and _holds(store) == ()
        assert names(tmp_path / "inbox" / "failed") == sorted(
            [f"C-1/{BAD}", f"C-1/{BAD}{ERROR_SUFFIX}", "C-1/upper.stl",
             f"C-1/upper.stl{ERROR_SUFFIX}"])
        (held,) = [e for e in logs if e["event"] == "case_held"]
        assert (held["bad"], held["held"]) == (["lower\\xff.stl"], ["upper.stl"])
        assert [e for e in logs if e["event"] == "case_holds_forgotten"] == []

    def test_a_file_that_comes_as_the_folder_is_removed_is_held_with_its_case(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The copy goes on between the look that found the folder empty and its removal:
        the removal fails harmlessly, the folder and its holds stay, and the file is held
        with its case. (Until the review of session 41 the holds were forgotten before the
        removal was tried: the rest of the case was then taken as a new case and printed
        without its part set aside.)"""
        case = _only_a_bad_part(tmp_path)
        real_prune = intake_module.prune_empty_tree

        def copy_goes_on(root: Path) -> None:
            (root / "upper.stl").write_bytes(tetra_stl_bytes(1))
            real_prune(root)

        with capture_logs() as logs:
            _look(daemon, clock)
            monkeypatch.setattr(intake_module, "prune_empty_tree", copy_goes_on)
            _look(daemon, clock, after_s=QUIET_S + 1)  # found empty and quiet; a file comes
            monkeypatch.undo()
            assert case.is_dir() and len(_holds(store)) == 1
            _look(daemon, clock, after_s=QUIET_S + 1)
            _look(daemon, clock, after_s=QUIET_S + 1)

        (kept,) = [e for e in logs if e["event"] == "case_folder_kept"]
        assert (kept["root"], kept["log_level"]) == (str(case), "info")
        (held,) = [e for e in logs if e["event"] == "case_held"]
        assert (held["bad"], held["held"]) == (["lower\\xff.stl"], ["upper.stl"])
        assert "C-1/upper.stl" in names(tmp_path / "inbox" / "failed")
        assert {(j.original_name, j.state) for j in store.list_jobs()} == {
            ("upper.stl", JobState.FAILED)}  # nothing of the case taken to print
        assert [e for e in logs if e["event"] == "case_holds_forgotten"] == []

    def test_an_empty_folder_no_hold_names_stays(
        self, tmp_path: Path, clock: ManualClock, daemon: HotFolderDaemon
    ) -> None:
        """Only a folder the store holds is ended so: an empty folder the user made waits for
        files, as before."""
        made = tmp_path / "inbox" / "C-2"
        made.mkdir(parents=True)
        _look(daemon, clock)
        _look(daemon, clock, after_s=QUIET_S + 1)
        assert made.is_dir()


class TestTheHoldsOfAFolderGoneFromTheInbox:
    """Forgotten at the second daemon scan that finds it gone: a folder made again under its
    name (which may get the old inode back) is another case."""

    def test_are_forgotten_and_a_folder_still_there_keeps_its_own(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        inbox = tmp_path / "inbox"
        for name in ("C-1", "C-2", "C-3"):
            (inbox / name).mkdir(parents=True)
            (inbox / name / "upper.stl").write_bytes(tetra_stl_bytes(1))
            (inbox / name / BAD).write_bytes(tetra_stl_bytes(2))
        _look(daemon, clock)  # each one's part set aside; each case still quiet-waiting
        assert len(_holds(store)) == 3
        shutil.rmtree(inbox / "C-1")  # removed by the user
        (inbox / "C-3").rename(tmp_path / "kept")  # renamed away, and another made
        (inbox / "C-3").mkdir()  # (on ext4 it gets C-1's inode: not C-1 renamed all the same)

        with capture_logs() as logs:
            _look(daemon, clock, after_s=1.0)
            assert len(_holds(store)) == 3  # found gone once: not yet
            _look(daemon, clock, after_s=1.0)

        assert [key.split(os.sep)[-2] for key in _holds(store)] == ["C-2"]
        forgotten = {e["root"]: e for e in logs if e["event"] == "case_holds_forgotten"}
        assert sorted(forgotten) == [str(inbox / "C-1"), str(inbox / "C-3")]
        assert forgotten[str(inbox / "C-1")]["parts"] == ["lower\\xff.stl"]
        assert forgotten[str(inbox / "C-1")]["reason"].startswith(
            "its folder is not in the inbox any more")

    def test_a_folder_that_cannot_be_looked_at_for_a_moment_keeps_them(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """An error looking at a held case folder (a share away for a moment, a permission)
        does not show it gone: its holds stay, or its rest would print without the part set
        aside. (Until the review of session 41 any error counted as gone.)"""
        case = tmp_path / "inbox" / "C-1"
        case.mkdir(parents=True)
        (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
        (case / BAD).write_bytes(tetra_stl_bytes(2))
        _look(daemon, clock)
        assert len(_holds(store)) == 1
        real_lstat = os.lstat

        def share_away(path: object, *args: object, **kwargs: object) -> os.stat_result:
            if os.fspath(path) == str(case):  # type: ignore[call-overload]
                raise OSError(errno.EIO, "Input/output error", str(case))
            return real_lstat(path, *args, **kwargs)  # type: ignore[call-overload,no-any-return]

        with capture_logs() as logs:
            monkeypatch.setattr(os, "lstat", share_away)
            daemon._forget_gone_holds()
            monkeypatch.undo()

        assert len(_holds(store)) == 1
        assert [e for e in logs if e["event"] == "case_holds_forgotten"] == []
        (kept,) = [e for e in logs if e["event"] == "case_holds_kept"]
        assert (kept["root"], kept["log_level"]) == (str(case), "warning")

    def test_one_whose_record_cannot_be_read_is_forgotten_too(
        self, tmp_path: Path, store: SqliteJobStore, daemon: HotFolderDaemon,
    ) -> None:
        """A hold whose value is no folder's (not written by this version) holds nothing
        and is not kept for ever."""
        key = f"{HOLD_NOTICE} {tmp_path / 'inbox' / 'C-9'}{os.sep}{b'upper.stl'.hex()}"
        store.note_notice(key, "not an inode")
        daemon._forget_gone_holds()
        daemon._forget_gone_holds()
        assert _holds(store) == ()

    def test_an_inbox_that_cannot_be_listed_keeps_them(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon, monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A held folder may be in the inbox under another name (renamed): when the inbox's
        folders cannot be listed, none is known gone."""
        inbox = tmp_path / "inbox"
        _a_case_with_a_bad_part(inbox / "C-1")
        _look(daemon, clock)
        (inbox / "C-1").rename(inbox / "C-1-smith")
        real_scandir = os.scandir

        def share_away(path: object = ".") -> object:
            if os.fspath(path) == str(inbox):  # type: ignore[call-overload]
                raise OSError(errno.EIO, "Input/output error", str(inbox))
            return real_scandir(path)  # type: ignore[call-overload]

        with capture_logs() as logs:
            monkeypatch.setattr(os, "scandir", share_away)
            daemon._forget_gone_holds()
            daemon._forget_gone_holds()
            monkeypatch.undo()

        assert len(_holds(store)) == 1
        assert [e for e in logs if e["event"] == "case_holds_forgotten"] == []
        assert [(e["root"], e["log_level"]) for e in logs if e["event"] == "case_holds_kept"
                ] == [(str(inbox), "warning")] * 2

    def test_an_inbox_unmounted_for_a_moment_keeps_them(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        """A share unmounted for one scan leaves its empty mount point: every held folder
        looks gone once, and is back at the next scan. Its holds stay; forgotten, the rest
        of a held case would print without its part set aside. (Until the review of session
        41 the first scan that found a folder gone forgot them.)"""
        inbox = tmp_path / "inbox"
        case = inbox / "C-1"
        case.mkdir(parents=True)
        (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
        (case / BAD).write_bytes(tetra_stl_bytes(2))
        _look(daemon, clock)
        assert len(_holds(store)) == 1
        with capture_logs() as logs:
            case.rename(tmp_path / "away")  # the share's content away for one scan
            daemon._forget_gone_holds()
            (tmp_path / "away").rename(case)
            daemon._forget_gone_holds()
            daemon._forget_gone_holds()

        assert len(_holds(store)) == 1
        assert [e for e in logs if e["event"] == "case_holds_forgotten"] == []


class TestAHeldCaseFolderRenamedInTheInbox:
    """The same folder under another name (a technician's ``C12`` to ``C12-smith``): its
    holds follow its inode, so it stays held. (Until session 43 they were keyed by its path
    alone: the rest of the case printed without the part set aside.)"""

    def test_it_stays_held_under_its_new_name(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        inbox = tmp_path / "inbox"
        case = _a_case_with_a_bad_part(inbox / "C12")
        with capture_logs() as logs:
            _look(daemon, clock)  # its part set aside: held
            case.rename(inbox / "C12-smith")
            _look(daemon, clock, after_s=1.0)  # two scans meet C12 gone, C12-smith new
            _look(daemon, clock, after_s=1.0)
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert {(j.original_name, j.state) for j in store.list_jobs()} == {
            ("upper.stl", JobState.FAILED)}  # held, not printed
        assert names(inbox / "failed") == sorted(
            [f"C12/{BAD}", f"C12/{BAD}{ERROR_SUFFIX}", "C12-smith/upper.stl",
             f"C12-smith/upper.stl{ERROR_SUFFIX}"])
        (held,) = [e for e in logs if e["event"] == "case_held"]
        assert (held["root"], held["bad"]) == (str(inbox / "C12-smith"), ["lower\\xff.stl"])
        assert _holds(store) == ()  # its hold ended with the case, under its old name too
        assert [e for e in logs if e["event"] == "case_holds_forgotten"
                and e["reason"].startswith("its folder is not in the inbox")] == []

    def test_its_rest_copied_in_after_the_hold_keeps_it_held(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        """Its badly named part came first (the folder held nothing else then): the files
        that came after, noted at the scan, show it is the same folder under its new name."""
        inbox = tmp_path / "inbox"
        case = inbox / "C12"
        case.mkdir(parents=True)
        (case / BAD).write_bytes(tetra_stl_bytes(2))
        _look(daemon, clock)  # its part set aside: held, nothing else in it
        (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
        _look(daemon, clock, after_s=1.0)
        case.rename(inbox / "C12-smith")
        _look(daemon, clock, after_s=1.0)
        _look(daemon, clock, after_s=1.0)
        _look(daemon, clock, after_s=QUIET_S + 1)

        assert {(j.original_name, j.state) for j in store.list_jobs()} == {
            ("upper.stl", JobState.FAILED)}  # held, not printed

    def test_a_folder_that_has_its_inode_and_none_of_its_files_is_another_case(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
        daemon: HotFolderDaemon,
    ) -> None:
        """A held folder removed, and the next one made given its inode back (ext4 does),
        looks like it renamed: only what it holds tells them apart. Here the held folder's
        own files are removed and another case's put in before it is renamed (what a
        reused inode shows, on any file system): it is that other case, and prints."""
        inbox = tmp_path / "inbox"
        case = _a_case_with_a_bad_part(inbox / "C-1")
        _look(daemon, clock)  # its part set aside: held
        (case / "upper.stl").unlink()
        case.rename(inbox / "C-3")
        (inbox / "C-3" / "upper.stl").write_bytes(tetra_stl_bytes(3))  # another case's
        with capture_logs() as logs:
            _look(daemon, clock, after_s=1.0)
            _look(daemon, clock, after_s=1.0)
            _look(daemon, clock, after_s=QUIET_S + 1)

        assert {(j.original_name, j.state) for j in store.list_jobs()} == {
            ("upper.stl", JobState.PROCESSING)}
        assert [e for e in logs if e["event"] == "case_held"] == []
        (forgotten,) = [e for e in logs if e["event"] == "case_holds_forgotten"]
        assert forgotten["root"] == str(inbox / "C-1")
        assert _holds(store) == ()

    def test_one_in_a_route_folder_stays_held_too(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
    ) -> None:
        daemon = _routed(tmp_path, store, clock)
        route = tmp_path / "inbox" / "other"
        case = _a_case_with_a_bad_part(route / "C12")
        _look(daemon, clock)
        case.rename(route / "C12-smith")
        _look(daemon, clock, after_s=1.0)
        _look(daemon, clock, after_s=1.0)
        _look(daemon, clock, after_s=QUIET_S + 1)

        assert {(j.original_name, j.recipe, j.state) for j in store.list_jobs()} == {
            ("upper.stl", "other", JobState.FAILED)}

    def test_a_route_folder_removed_does_not_keep_the_holds_of_the_others(
        self, tmp_path: Path, store: SqliteJobStore, clock: ManualClock,
    ) -> None:
        daemon = _routed(tmp_path, store, clock)
        case = _a_case_with_a_bad_part(tmp_path / "inbox" / "C-1")
        _look(daemon, clock)
        assert not (tmp_path / "inbox" / "other").exists()  # (its route folder: not there)
        shutil.rmtree(case)
        _look(daemon, clock, after_s=1.0)
        _look(daemon, clock, after_s=1.0)

        assert _holds(store) == ()
