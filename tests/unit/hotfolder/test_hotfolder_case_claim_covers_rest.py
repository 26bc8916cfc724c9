"""A case folder's claim covers the folder while files of it wait unbatched, and a case job's
own claim is the one its take was made under (hotfolder/nodes.py ``NodeRole.claim_drop``,
store/leases.py ``claim_inbox_file`` and ``_OWN_CLAIM``; real PostgreSQL, real folders).

Node ``pc-b`` claimed case ``C-11`` (a.stl, b.stl, c.stl) and took it file by file: a.stl went
into processing/, and ``pc-b`` was killed before b.stl's job was written. The folder's rest is
new content, so a new claim: another node won it and took b.stl and c.stl as a case of their
own, in another build, while ``pc-b``'s next life held a.stl and let it go alone once the
folder was gone (session 37, "Noticed and left alone"). A case must be one build.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psycopg
from daemon_support import Script, make_daemon, names, run_daemon_once
from structlog.testing import capture_logs
from test_hotfolder_cut_moves_finished import Killed
from test_hotfolder_node_orphans import _node

from preform_pipeline.hotfolder import Drop
from preform_pipeline.hotfolder.files import move_file
from preform_pipeline.hotfolder.intake import Intake, _with_place, place_of
from preform_pipeline.hotfolder.nodes import NodeRole
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.hotfolder.testing import (
    running_daemon,
    tetra_stl_bytes,
    wait_for,
    write_recipe,
)
from preform_pipeline.settings.hotfolder import HotFolderSettings, InboxSettings
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.fenced import NodeJobStore
from tests.pg_cluster import PG_PASSWORD

FILES = ("a.stl", "b.stl", "c.stl")
WAIT_S = 30.0


def _killed_after_moving(name: str) -> Callable[[Path, Path], None]:
    """A move that kills its process right after it moved the file named ``name``: before
    the next file's job is written."""

    def move(source: Path, target: Path) -> None:
        move_file(source, target)
        if source.name == name:
            raise Killed(str(source))

    return move


def _admin(url: str, statement: str) -> None:
    with psycopg.connect(url, password=PG_PASSWORD, autocommit=True) as admin:
        admin.execute(statement)


def _case(inbox: InboxSettings) -> Path:
    case = inbox.path / "C-11"
    case.mkdir(parents=True)
    for seed, name in enumerate(FILES):
        (case / name).write_bytes(tetra_stl_bytes(110 + seed))
    return case


def _drop(inbox: InboxSettings, case: Path) -> Drop:
    """The case folder as a scan finds it now."""
    models = tuple(sorted(p for p in case.iterdir() if p.is_file()))
    return Drop(inbox, case, "hot", True, models=models)


def _cut_after_first(b: NodeJobStore, inbox: InboxSettings, case: Path) -> Job:
    """``pc-b`` claims the case and is killed once a.stl is in processing/."""
    drop = _drop(inbox, case)
    claim = NodeRole(b).claim_drop(drop)
    assert claim is not None
    with contextlib.suppress(Killed):
        Intake(b, [inbox], move=_killed_after_moving("a.stl")).take(
            Drop(inbox, case, "hot", True, models=drop.models, claim=claim))
    (first,) = b.list_jobs()
    assert first.state is JobState.PROCESSING and first.source_path.is_file()
    return first


def _silent(url: str, node: str) -> None:
    """``node`` is killed for good: silent since long before a lease."""
    _admin(url, f"UPDATE nodes SET heartbeat_at = now() - interval '1 hour' WHERE id = '{node}'")


def _cut_case(url: str, stores: list[NodeJobStore], tmp_path: Path
              ) -> tuple[Path, InboxSettings, NodeJobStore, Job]:
    """A recipe, an inbox of it, node ``pc-b``, and its job of a.stl: the case cut after it."""
    recipe = write_recipe(tmp_path)
    inbox = InboxSettings(path=tmp_path / "inbox", recipe=recipe)
    case = _case(inbox)
    b = _node(url, stores, "pc-b", inbox.path)
    return recipe, inbox, b, _cut_after_first(b, inbox, case)


def _taken_whole(url: str, stores: list[NodeJobStore], inbox: InboxSettings
                 ) -> tuple[NodeRole, tuple[Job, ...]]:
    """Node ``pc-b``, which claimed case C-11 and took it whole (not batched yet)."""
    drop = _drop(inbox, _case(inbox))
    role = NodeRole(_node(url, stores, "pc-b", inbox.path))
    claim = role.claim_drop(drop)
    return role, Intake(role.store, [inbox]).take(replace(drop, claim=claim)).taken


def _printed_as_one_build(store: NodeJobStore, inbox: InboxSettings, first: Job) -> None:
    jobs = store.list_jobs()
    assert sorted(j.original_name for j in jobs) == list(FILES)
    assert {j.build_id for j in jobs} == {store.get_job(first.id).build_id}
    assert {j.state for j in jobs} == {JobState.PRINT_SENT}
    assert names(inbox.path) == sorted(
        f"done/C-11/{n}{s}" for n in FILES for s in ("", ".report.json"))


class TestTheRestOfACaseCutShort:
    """The rest goes with the case's first files: to their taker while it lives, to the node
    that adopts them once it is gone; never to another node as a case of its own."""

    def test_a_live_taker_keeps_the_rest_and_takes_it_on(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        _, inbox, b, _ = _cut_case(url, stores, tmp_path)  # (or merely slow: alive all the same)
        case = inbox.path / "C-11"
        a = _node(url, stores, "pc-a", inbox.path)

        with capture_logs() as logs:
            assert NodeRole(a).claim_drop(_drop(inbox, case)) is None
        assert [(e["case_taken_by"], e["why"]) for e in logs
                if e["event"] == "inbox_file_claim"] == [
            (["pc-b"], "the rest of a case whose first files wait under that node's claim")]
        assert NodeRole(b).claim_drop(_drop(inbox, case)) is not None  # its own rest

    def test_the_takers_machine_numbers_the_shared_disk_its_own_way(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        """A shared inbox (NFS, SMB) has a device number of each machine's own mount: the
        case folder is the taker's recorded one by its inode, whatever device number pc-b's
        machine gave it (here one other than this machine's)."""
        _, inbox, b, first = _cut_case(url, stores, tmp_path)
        case = inbox.path / "C-11"
        place = place_of(first)
        assert place is not None and place.case is not None
        elsewhere = replace(place, case=replace(place.case, device=place.case.device + 1))
        first = b.update_job(first.id, fields=_with_place(first, elsewhere))
        a = _node(url, stores, "pc-a", inbox.path)

        assert NodeRole(a).claim_drop(_drop(inbox, case)) is None
        assert Intake(a, [inbox]).case_left_in_inbox(first) == case  # adopted, it waits

    def test_a_node_that_adopts_a_gone_takers_files_prints_the_whole_case_as_one_build(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        recipe, inbox, _, first = _cut_case(url, stores, tmp_path)
        _silent(url, "pc-b")  # it never comes back
        a = NodeRole(_node(url, stores, "pc-a", inbox.path))
        # Its scan before any adoption leaves the rest for the node that adopts a.stl.
        with capture_logs() as logs:
            assert a.claim_drop(_drop(inbox, inbox.path / "C-11")) is None
        assert [e["why"].endswith("a gone node's claim, for the node that adopts them")
                for e in logs if e["event"] == "inbox_file_claim"] == [True]

        daemon = make_daemon(tmp_path, a.store, Script(fleet_dir=tmp_path / "fleet"), recipe,
                             node=a)
        run_daemon_once(daemon)  # adopts a.stl at its start, then takes the rest

        _printed_as_one_build(a.store, inbox, first)
        assert {node for _, _, node in a.store.inbox_claims()} == {"pc-a"}

    def test_a_running_node_that_adopts_them_later_prints_the_whole_case_as_one_build(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        recipe, inbox, _, first = _cut_case(url, stores, tmp_path)
        a = NodeRole(_node(url, stores, "pc-a", inbox.path))
        daemon = make_daemon(tmp_path, a.store, Script(fleet_dir=tmp_path / "fleet"), recipe,
                             node=a, hot={"rescan_interval_s": 0.2})
        with capture_logs() as logs, running_daemon(daemon):
            # pc-b alive at pc-a's start: its scans leave the rest to pc-b ...
            wait_for(lambda: any(e.get("case_taken_by") == ["pc-b"] for e in logs),
                     WAIT_S, what="the rest left to pc-b")
            # ... until pc-b is silent for a lease: a maintenance pass adopts a.stl.
            _silent(url, "pc-b")
            wait_for(lambda: len(a.store.list_jobs(state=JobState.PRINT_SENT)) == len(FILES),
                     WAIT_S, what="the case printed")

        _printed_as_one_build(a.store, inbox, first)

    def test_a_case_taken_whole_and_batched_does_not_hold_its_name(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        inbox = InboxSettings(path=tmp_path / "inbox")
        b, taken = _taken_whole(url, stores, inbox)
        b.store.create_build(recipe="hot", job_ids=[j.id for j in taken])
        case = inbox.path / "C-11"
        assert not case.exists()

        # The same name again, whatever its inode: the old case's files are batched.
        case.mkdir()
        (case / "d.stl").write_bytes(tetra_stl_bytes(120))
        a = _node(url, stores, "pc-a", inbox.path)
        assert NodeRole(a).claim_drop(_drop(inbox, case)) is not None


class TestALaterCaseOfTheSameName:
    """Another node's claim on the same folder path (a later case of the same name; in a
    store from before this session, the rest of a split case) is not the case's jobs'
    own: the sweep of processing/ settles their files while that node lives."""

    def test_the_sweep_settles_the_first_cases_files(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        inbox = InboxSettings(path=tmp_path / "inbox")
        for kind in ("processing", "done", "failed"):
            inbox.folder(kind).mkdir(parents=True)
        role, taken = _taken_whole(url, stores, inbox)
        b = role.store
        # Its build failed, and its node was killed before it moved the files (the sweep's
        # work), long enough ago that no holder may still be settling them.
        build = b.create_build(recipe="hot", job_ids=[j.id for j in taken])
        b.transition_build(build.id, JobState.FAILED, "the server refused it")
        _admin(url, "UPDATE builds SET updated_at = now() - interval '1 hour'")
        # Meanwhile a new C-11, taken by pc-a (alive).
        a = _node(url, stores, "pc-a", inbox.path)
        assert a.claim_inbox_file("pc-a", inbox.path / "C-11",
                                  "sha256:a-later-case-of-that-name")

        hot = HotFolderSettings(inboxes=(inbox,))
        intake = Intake(b, hot.inboxes)
        left = OutcomeFolders(b, intake, hot, active=role.active_builds()
                              ).settle_processing_folders()

        assert left == set()
        assert names(inbox.folder("failed")) == sorted(
            f"C-11/{n}{s}" for n in FILES for s in ("", ".error.txt"))
        assert ("pc-a" in {node for _, _, node in b.inbox_claims()})  # its claim stays its
