"""A farm node recovering a build whose print never went out (hotfolder/nodes.py
``NodeRecovery.take_apart``; real PostgreSQL, real folders, a reaped server process).

Node ``pc-a`` took a file, prepared it and began its send; its server died, and so did
``pc-a``, which came back at once (alive again, its previous life's lease on the build
lapsing). ``pc-b`` claims the build, proves the print absent and batches the job again. If
``pc-b`` dies before it batches the job, a third node must adopt it, however long ``pc-a``
lives: ``pc-a``'s start-up adoption of its own jobs is over, and no node adopts a live
node's. The farm kill loop once saw a case stay in processing/ so.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from test_hotfolder_node_orphans import _node, _taken

from preform_pipeline.clock import ManualClock
from preform_pipeline.hotfolder.batcher import BatchItem
from preform_pipeline.hotfolder.intake import Intake
from preform_pipeline.hotfolder.nodes import NodeRecovery, NodeRole
from preform_pipeline.hotfolder.outcomes import OutcomeFolders
from preform_pipeline.printing import FleetFolderLocator, PrintOwner
from preform_pipeline.printing.testing import reaped_holder
from preform_pipeline.settings.hotfolder import HotFolderSettings, InboxSettings
from preform_pipeline.store import Build, JobState
from preform_pipeline.store.fenced import NodeJobStore
from tests.pg_cluster import PG_PASSWORD


class _Node:
    """A node watching ``inbox``: its recovery, wired as the daemon wires it, looking prints
    up in ``fleet`` (no report delay), and what it gave its batcher to batch."""

    def __init__(self, store: NodeJobStore, inbox: Path, fleet: Path) -> None:
        self.store = store
        self.batched: list[BatchItem] = []
        hot = HotFolderSettings(inboxes=(InboxSettings(path=inbox),))
        intake = Intake(store, hot.inboxes)
        owner = PrintOwner(store, [FleetFolderLocator(fleet, report_delay_s=0.0)])
        self.recovery: NodeRecovery = NodeRole(store).recovery(
            intake, OutcomeFolders(store, intake, hot), owner, ManualClock(),
            give_back=lambda items, _held: self.batched.extend(items), wake=lambda: None)


def _sending(store: NodeJobStore, job_id: int) -> Build:
    """A build of the job, prepared, caught sending through a server since killed."""
    build = store.create_build(recipe="hot", job_ids=[job_id])
    for state in (JobState.PREPARING, JobState.PREPARED):
        store.transition_build(build.id, state, "test")
    return store.transition_build(
        build.id, JobState.PRINT_SENDING, "sending", job_name=f"hot-{build.job_key}",
        printer="SimulatedForm4-1", send_holder=reaped_holder().to_json())


def _admin(url: str, statement: str, *args: object) -> None:
    with psycopg.connect(url, password=PG_PASSWORD, autocommit=True) as admin:
        admin.execute(statement, args)


class TestAPrintThatNeverWentOut:
    """Its jobs are batched again by the node that recovered the build, under that node's
    claims."""

    def test_a_third_node_adopts_the_job_when_the_recovering_node_dies_before_batching_it(
        self, url: str, stores: list[NodeJobStore], tmp_path: Path
    ) -> None:
        inbox, fleet = tmp_path / "inbox", tmp_path / "fleet"
        sender = _node(url, stores, "pc-a", inbox)
        job = _taken(sender, inbox, "crown.stl")
        build = _sending(sender, job.id)
        # pc-a died sending and is back: alive, but its previous life's lease has lapsed.
        _admin(url, "UPDATE builds SET lease_until = now() WHERE id = %s", build.id)

        b = _Node(_node(url, stores, "pc-b", inbox), inbox, fleet)
        assert b.recovery.adopt() == []
        assert b.store.get_build(build.id).state is JobState.CANCELLED
        (item,) = b.batched
        assert item.job_ids == (job.id,)
        assert {holder for _, _, holder in b.store.inbox_claims()} == {"pc-b"}

        # pc-b is killed before its loop batches the job: silent since long before a lease.
        _admin(url, "UPDATE nodes SET heartbeat_at = now() - interval '1 hour' "
                    "WHERE id = 'pc-b'")
        c = _Node(_node(url, stores, "pc-c", inbox), inbox, fleet)
        resumed = c.recovery.adopt()

        assert [(j.id, j.state, j.build_id) for j in resumed] == [
            (job.id, JobState.PROCESSING, None)]
        assert {holder for _, _, holder in c.store.inbox_claims()} == {"pc-c"}
        assert sender.get_job(job.id).source_path.is_file()  # its file waits in processing/
