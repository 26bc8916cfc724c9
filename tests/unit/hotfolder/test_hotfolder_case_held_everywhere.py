"""A held case stays held whoever takes it and whatever was taken of it before
(plan/held.py's rule; hotfolder/caseholds.py, intake ``_hold_case``; real folders, a real
SQLite store, real PostgreSQL for the farm).

A part whose name is not UTF-8 is set aside to failed/ at first sight, long before its case
is complete. Until session 40 only the daemon that set it aside remembered it, in memory: a
restart, or another farm node that took the case, printed the rest. And a case whose take
was cut short (files of it already in processing/) had only its rest held when the rest was
found bad: the files taken before printed alone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs
from test_hotfolder_case_claim_covers_rest import _killed_after_moving
from test_hotfolder_cut_moves_finished import Killed
from test_hotfolder_node_orphans import _node

from preform_pipeline.errors import StoreError
from preform_pipeline.hotfolder import Drop
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.files import ERROR_SUFFIX
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.testing import tetra_stl_bytes, write_recipe
from preform_pipeline.settings.hotfolder import InboxSettings
from preform_pipeline.store import JobState, JobStore, SqliteJobStore
from preform_pipeline.store.fenced import NodeJobStore

BAD = os.fsdecode(b"lower\xff.stl")  # (a name the job store cannot record)


def _case_with_a_bad_name(inbox: Path) -> Path:
    case = inbox / "C-1"
    case.mkdir(parents=True)
    (case / "upper.stl").write_bytes(tetra_stl_bytes(1))
    (case / BAD).write_bytes(tetra_stl_bytes(2))
    return case


class StoreAwayForANotice(SqliteJobStore):
    """The store, unreachable for the first notice written (the store seam)."""

    away = True

    def note_notice(self, key: str, about: str) -> bool:
        if self.away:
            self.away = False
            raise StoreError("the job store is away", hint="it comes back")
        return super().note_notice(key, about)


def _first_look(tmp_path: Path, store: JobStore, recipe: Path, node: NodeRole | None) -> None:
    """One pass of a daemon that meets the case before it is complete (a quiet
    period not over yet): the badly named part is set aside, the rest waits; then the daemon
    is gone (stopped, restarted, or another node of the farm goes on)."""
    daemon = make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe,
                         inbox={"quiet_period_s": 600.0}, node=node)
    daemon._rescan()
    daemon._check_units()
    assert daemon._units, "the case waits for its quiet period"


def _held_whole(inbox: Path, jobs: JobStore) -> None:
    """Nothing of C-1 printed: upper.stl is in failed/ with its note naming the bad part."""
    assert names(inbox / "failed") == sorted(
        [f"C-1/{BAD}", f"C-1/{BAD}{ERROR_SUFFIX}", "C-1/upper.stl",
         f"C-1/upper.stl{ERROR_SUFFIX}"])
    assert not (inbox / "done").exists() or names(inbox / "done") == []
    note = (inbox / "failed" / "C-1" / f"upper.stl{ERROR_SUFFIX}").read_text(encoding="utf-8")
    assert "held with its case C-1: lower\\xff.stl cannot be prepared" in note
    (job,) = jobs.list_jobs()
    assert job.state is JobState.FAILED and job.build_id is None


class TestAPartSetAsideHoldsItsCaseForWhoeverTakesIt:
    """The hold is in the job store, not in the memory of the daemon that set the part
    aside."""

    def test_a_restarted_daemon_holds_the_case(self, tmp_path: Path) -> None:
        recipe = write_recipe(tmp_path, printer=None)
        inbox = tmp_path / "inbox"
        _case_with_a_bad_name(inbox)
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            _first_look(tmp_path, store, recipe, None)
            assert names(inbox / "failed") == [f"C-1/{BAD}", f"C-1/{BAD}{ERROR_SUFFIX}"]

            with capture_logs() as logs:
                run_daemon_once(make_daemon(tmp_path, store, Script(tmp_path / "fleet"),
                                            recipe))
            _held_whole(inbox, store)
            (held,) = [e for e in logs if e["event"] == "case_held"]
            assert (held["bad"], held["held"]) == (["lower\\xff.stl"], ["upper.stl"])
            # Said once: the store no longer holds the folder, so the case moved back (its
            # bad part renamed) goes on whole.
            assert store.notice_keys("") == ()

    def test_another_farm_node_holds_the_case(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        recipe = write_recipe(tmp_path, printer=None)
        inbox = tmp_path / "inbox"
        _case_with_a_bad_name(inbox)
        a = NodeRole(_node(url, stores, "pc-a", inbox))
        b = NodeRole(_node(url, stores, "pc-b", inbox))
        _first_look(tmp_path, a.store, recipe, a)  # pc-a sets lower aside, then is gone

        run_daemon_once(make_daemon(tmp_path, b.store, Script(tmp_path / "fleet"), recipe,
                                    node=b))
        _held_whole(inbox, b.store)

    def test_a_part_whose_hold_the_store_cannot_record_waits(self, tmp_path: Path) -> None:
        """Store first, then move: with the store away the part is neither set aside nor
        taken with its case (a name no job can record), though the case is quiet, until its
        hold is recorded."""
        recipe = write_recipe(tmp_path, printer=None)
        inbox = tmp_path / "inbox"
        case = _case_with_a_bad_name(inbox)
        with StoreAwayForANotice(tmp_path / "jobs.sqlite3") as store:
            daemon = make_daemon(tmp_path, store, Script(tmp_path / "fleet"), recipe,
                                 inbox={"quiet_period_s": 0.0})
            with capture_logs() as logs:
                daemon._rescan()
                daemon._check_units()
            assert (case / BAD).exists() and not (inbox / "failed").exists()
            assert store.list_jobs() == () and list(daemon._units) == [case]
            assert [e["event"] for e in logs if e["event"].startswith("case_hold")] == [
                "case_hold_not_recorded"]

            run_daemon_once(make_daemon(tmp_path, store, Script(tmp_path / "fleet"), recipe))
            _held_whole(inbox, store)

    def test_a_later_case_of_the_same_name_is_not_held(self, tmp_path: Path) -> None:
        """The hold is the folder's, not its name's: a case folder removed from the inbox
        and made again (another folder) goes on."""
        recipe = write_recipe(tmp_path, printer=None)
        inbox = tmp_path / "inbox"
        case = _case_with_a_bad_name(inbox)
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            _first_look(tmp_path, store, recipe, None)
            case.rename(tmp_path / "kept")  # (so the new folder cannot get its inode)
            case.mkdir()
            (case / "upper.stl").write_bytes(tetra_stl_bytes(1))

            run_daemon_once(make_daemon(tmp_path, store, Script(tmp_path / "fleet"), recipe))
            assert names(inbox / "done") == ["C-1/upper.stl", "C-1/upper.stl.report.json"]
            assert store.notice_keys("") == ()


def _cut_after_a(store: JobStore, inbox: InboxSettings,
                 files: tuple[str, ...] = ("a.stl", "b.stl"), last: str = "a.stl") -> Path:
    """Case C-7 (``files``) whose take a crash cut once ``last`` was in processing/."""
    case = inbox.path / "C-7"
    case.mkdir(parents=True)
    for seed, name in enumerate(files):
        (case / name).write_bytes(tetra_stl_bytes(70 + seed))
    models = tuple(sorted(case.iterdir()))
    with contextlib.suppress(Killed):
        Intake(store, [inbox], move=_killed_after_moving(last)).take(
            Drop(inbox, case, "hot", True, models=models))
    taken = store.list_jobs()
    assert {j.state for j in taken} == {JobState.PROCESSING}
    assert all(j.source_path.is_file() for j in taken)
    return case


class TestACutTakeWhoseRestIsBad:
    """The files a cut take left in processing/ are held with the rest of their case."""

    def _daemon(self, tmp_path: Path, store: JobStore, recipe: Path) -> HotFolderDaemon:
        return make_daemon(tmp_path, store, Script(fleet_dir=tmp_path / "fleet"), recipe)

    def test_the_files_taken_before_are_held_too(self, tmp_path: Path) -> None:
        recipe = write_recipe(tmp_path, printer=None)
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            case = _cut_after_a(store, inbox)
            (case / "c.step").write_bytes(b"ISO-10303-21;")  # a part that cannot be prepared

            with capture_logs() as logs:
                run_daemon_once(self._daemon(tmp_path, store, recipe))
            jobs = {j.original_name: j for j in store.list_jobs()}

        assert names(inbox.path / "failed") == sorted(
            f"C-7/{n}{s}" for n in ("a.stl", "b.stl", "c.step") for s in ("", ERROR_SUFFIX))
        assert names(inbox.path / "processing") == []
        assert {n: j.state for n, j in jobs.items()} == dict.fromkeys(
            ("a.stl", "b.stl", "c.step"), JobState.FAILED)
        assert jobs["a.stl"].build_id is None
        note = (inbox.path / "failed" / "C-7" / f"a.stl{ERROR_SUFFIX}").read_text("utf-8")
        assert "held with its case C-7: c.step cannot be prepared" in note
        (held,) = [e for e in logs if e["event"] == "case_held"]
        assert held["held"] == ["a.stl", "b.stl"]
        (stopped,) = [e for e in logs if e["event"] == "hotfolder_stopped"]
        assert stopped["batches"] == 0  # (its failed jobs not batched either)

    def test_each_note_names_the_jobs_command_that_reaches_its_store(
        self, tmp_path: Path
    ) -> None:
        """A lab's store is seldom the default one: every held file's note, the one taken
        before too, names the ``jobs`` command the daemon was given for it, which works as
        printed (a plain ``jobs show`` would open another store and find nothing)."""
        recipe = write_recipe(tmp_path, printer=None)
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        jobs = f"preform-pipeline jobs --store {tmp_path / 'lab.sqlite3'}"
        with SqliteJobStore(tmp_path / "lab.sqlite3") as store:
            case = _cut_after_a(store, inbox)
            (case / "c.step").write_bytes(b"ISO-10303-21;")
            Intake(store, [inbox], jobs=jobs).take(
                Drop(inbox, case, "hot", True, models=(case / "b.stl",),
                     others=(case / "c.step",)), earlier=store.list_jobs())
            keys = {job.original_name: job.job_key for job in store.list_jobs()}

        for name in ("a.stl", "b.stl", "c.step"):
            note = (inbox.path / "failed" / "C-7" / f"{name}{ERROR_SUFFIX}").read_text("utf-8")
            assert f"(see: {jobs} show {keys[name]})" in note, (name, note)

    def test_a_file_already_in_a_build_is_said_not_held(self, tmp_path: Path) -> None:
        """A job of the case another pass put in a build first (a race; its print may be
        under way) is not pretended held: it stays where its build has it, and the console
        says so, with what helps. One a user cancelled meanwhile stays cancelled; the
        others are held."""
        recipe = write_recipe(tmp_path, printer=None)
        inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
        with SqliteJobStore(tmp_path / "jobs.sqlite3") as store:
            case = _cut_after_a(store, inbox, ("a.stl", "b.stl", "c.stl", "d.stl"), "c.stl")
            first, cancelled, third = store.list_jobs()
            build = store.create_build(recipe="hot", job_ids=[first.id])
            store.transition(cancelled.id, JobState.CANCELLED, "cancelled by the user")
            (case / "e.step").write_bytes(b"ISO-10303-21;")
            daemon = self._daemon(tmp_path, store, recipe)
            said: list[str] = []
            daemon.notice = said.append
            # (waiting for the rest, as recover() leaves them)
            daemon._cut_cases[case] = [first, cancelled, third]
            models = tuple(p for p in sorted(case.iterdir()) if p.suffix == ".stl")
            with capture_logs() as logs:
                daemon._take(Drop(daemon.hot.inboxes[0], case, "hot", True, models=models,
                                  others=(case / "e.step",)), 0.0)
            now = {job.original_name: job for job in store.list_jobs()}

        assert now["a.stl"].state is JobState.PROCESSING and now["a.stl"].build_id == build.id
        assert now["a.stl"].source_path.is_file()  # where its build reads it
        assert now["b.stl"].state is JobState.CANCELLED and now["b.stl"].source_path.is_file()
        assert now["c.stl"].state is JobState.FAILED
        assert names(inbox.path / "failed") == sorted(
            f"C-7/{n}{s}" for n in ("c.stl", "d.stl", "e.step") for s in ("", ERROR_SUFFIX))
        assert daemon.batcher.flush() == []  # nothing of the case batched
        assert [e["held"] for e in logs if e["event"] == "case_held"] == [["c.stl", "d.stl"]]
        (late,) = [e for e in logs if e["event"] == "case_held_after_build"]
        assert late["jobs"] == [first.job_key] and late["builds"] == [build.id]
        assert late["root"] == str(case) and late["hint"] == (
            "that build goes on: cancel its jobs before the print is sent (jobs cancel), or "
            "stop the print at the printer")
        assert said == [
            f"{case} is held (e.step cannot be prepared, and a case prints whole or not at "
            f"all): its files are in {inbox.path / 'failed' / 'C-7'}, each with a note saying "
            "why; fix or replace the file named (as said of it), or take it out of the case; "
            "then the whole case goes on: move the case folder back into the inbox",
            f"{case} is held (a file of it cannot be prepared), but {first.job_key} went into "
            "a build before: that build goes on unless it is cancelled (preform-pipeline jobs "
            "cancel <key>, before its print is sent; after, stop the print at the printer)"]
