"""Which jobs a node adopts with a gone node's inbox claims (store/leases.py, real PostgreSQL):
exactly those whose own claim moved, the claim of the file as dropped (path and content) or of
the case folder it was dropped in, however the node's system writes its paths."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.hotfolder.testing import wait_for
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.fenced import NodeJobStore
from tests.unit.store.conftest import NodeFactory, lock_waiters

WAIT_S = 30.0


def _dropped(store: NodeJobStore, inbox: str, rel: str, content: str) -> Job:
    """An unbatched job of ``content`` taken from ``rel`` in ``inbox`` (as that node's system
    writes the inbox's path), its file in processing/."""
    place = JobPlace(Path(inbox), rel)
    return store.create_job(recipe="dental", source_path=f"/nas/processing/{rel}",
                            content_hash=content, state=JobState.PROCESSING,
                            fields={HOTFOLDER_FIELD: place.to_json()})


@pytest.fixture
def gone(node: NodeFactory) -> NodeJobStore:
    return node("pc-gone")


@pytest.fixture
def adopter(node: NodeFactory) -> NodeJobStore:
    return node("pc-b")


def _claims(store: NodeJobStore) -> dict[str, str | None]:
    return {path: holder for path, _, holder in store.inbox_claims()}


class TestAGoneNodesClaimsOnWindows:
    """A Windows node's claims (``\\`` in its paths) are its jobs' own claims."""

    @pytest.mark.parametrize("inbox", ["Z:\\inbox", "\\\\nas\\share\\inbox", "Z:\\"])
    def test_its_file_and_its_case_folder_are_adopted(
        self, gone: NodeJobStore, adopter: NodeJobStore, inbox: str
    ) -> None:
        root = inbox.rstrip("\\")
        single = _dropped(gone, inbox, "bracket.stl", "sha256:bracket")
        upper = _dropped(gone, inbox, "C-1042/upper.stl", "sha256:upper")
        lower = _dropped(gone, inbox, "C-1042/jaw/lower.stl", "sha256:lower")
        assert gone.claim_inbox_file("pc-gone", f"{root}\\bracket.stl", "sha256:bracket")
        assert gone.claim_inbox_file("pc-gone", f"{root}\\C-1042", "sha256:case")
        gone.node_stopped("pc-gone")

        assert adopter.adopt_orphan_jobs("pc-b") == (single.id, upper.id, lower.id)
        assert set(_claims(adopter).values()) == {"pc-b"}


class TestJobsThatAreNotTheClaims:
    """Jobs that share a gone node's claim's content or the start of its path stay put."""

    def test_none_of_them_is_adopted_and_their_claims_stay(
        self, gone: NodeJobStore, adopter: NodeJobStore, node: NodeFactory
    ) -> None:
        # Of the claim's content dropped elsewhere; at a claimed path with other content; in
        # a folder whose name only begins like the case's; a `run`'s (no place).
        live = node("pc-live")
        own = _dropped(gone, "/nas/inbox", "bracket.stl", "sha256:bracket")
        _dropped(live, "/nas/inbox", "bracket-copy.stl", "sha256:bracket")
        _dropped(live, "/nas/inbox", "redrop.stl", "sha256:new")
        _dropped(live, "/nas/inbox", "C-1042-b/upper.stl", "sha256:upper")
        live.create_job(recipe="dental", source_path="/models/redrop.stl",
                        content_hash="sha256:old", state=JobState.PROCESSING)
        assert gone.claim_inbox_file("pc-gone", "/nas/inbox/bracket.stl", "sha256:bracket")
        assert gone.claim_inbox_file("pc-gone", "/nas/inbox/redrop.stl", "sha256:old")
        assert gone.claim_inbox_file("pc-gone", "/nas/inbox/C-1042", "sha256:case")
        gone.node_stopped("pc-gone")

        assert adopter.adopt_orphan_jobs("pc-b") == (own.id,)
        assert _claims(adopter) == {"/nas/inbox/bracket.stl": "pc-b",
                                    "/nas/inbox/redrop.stl": "pc-gone",
                                    "/nas/inbox/C-1042": "pc-gone"}


class TestOnlyTheJobsTheNodeTakes:
    """``orphan_jobs`` lists what ``adopt_orphan_jobs`` would adopt, moving no claim; with
    ``job_ids`` only those are adopted (a node takes only its inboxes' jobs)."""

    def test_listed_then_only_the_chosen_adopted(
        self, gone: NodeJobStore, adopter: NodeJobStore
    ) -> None:
        a = _dropped(gone, "/lab/inbox-a", "upper.stl", "sha256:upper")
        b = _dropped(gone, "/lab/inbox-b", "lower.stl", "sha256:lower")
        assert gone.claim_inbox_file("pc-gone", "/lab/inbox-a/upper.stl", "sha256:upper")
        assert gone.claim_inbox_file("pc-gone", "/lab/inbox-b/lower.stl", "sha256:lower")
        assert adopter.orphan_jobs("pc-b") == ()  # their node lives
        gone.node_stopped("pc-gone")

        assert adopter.orphan_jobs("pc-b") == (a.id, b.id)
        assert set(_claims(adopter).values()) == {"pc-gone"}  # listing moved nothing
        assert adopter.adopt_orphan_jobs("pc-b", job_ids=[b.id]) == (b.id,)
        assert _claims(adopter) == {"/lab/inbox-a/upper.stl": "pc-gone",
                                    "/lab/inbox-b/lower.stl": "pc-b"}
        assert adopter.orphan_jobs("pc-b") == (a.id,)
        assert adopter.orphan_jobs("pc-b", own=True) == (a.id, b.id)  # its own claims too


class TestHandingBack:
    """A live node hands back only its own claims of jobs still unbatched, for one adoption."""

    @pytest.fixture
    def mine(self, node: NodeFactory) -> NodeJobStore:
        return node("pc-a")

    @pytest.fixture
    def other(self, node: NodeFactory) -> NodeJobStore:
        return node("pc-other")

    def test_its_own_claim_of_an_unbatched_job_goes_and_is_adopted_once(
        self, adopter: NodeJobStore, mine: NodeJobStore, other: NodeJobStore
    ) -> None:
        waiting = _dropped(mine, "/nas/inbox-x", "upper.stl", "sha256:upper")
        batched = _dropped(mine, "/nas/inbox-x", "lower.stl", "sha256:lower")
        others = _dropped(other, "/nas/inbox-x", "jaw.stl", "sha256:jaw")
        for store, job in ((mine, waiting), (mine, batched), (other, others)):
            assert store.claim_inbox_file(store.node_id, f"/nas/inbox-x/{job.original_name}",
                                          job.content_hash)
        mine.create_claimed_build("pc-a", recipe="dental", job_ids=[batched.id])
        every = [waiting.id, batched.id, others.id]
        assert adopter.adopt_orphan_jobs("pc-b") == ()  # a live node's claims: none

        with capture_logs() as logs:
            assert mine.hand_back_jobs("pc-a", every) == (waiting.id,)
        assert [e for e in logs if e["event"] == "orphan_jobs_handed_back"] == [
            {"event": "orphan_jobs_handed_back", "log_level": "info", "node": "pc-a",
             "jobs": [waiting.id], "why": "not of an inbox it watches"}]
        assert _claims(adopter) == {"/nas/inbox-x/upper.stl": None,
                                    "/nas/inbox-x/lower.stl": "pc-a",
                                    "/nas/inbox-x/jaw.stl": "pc-other"}
        assert adopter.adopt_orphan_jobs("pc-b", job_ids=every) == (waiting.id,)
        assert adopter.adopt_orphan_jobs("pc-b", job_ids=every) == ()
        # Once adopted it is not the hander's to give back again.
        assert mine.hand_back_jobs("pc-a", every) == ()
        assert _claims(adopter)["/nas/inbox-x/upper.stl"] == "pc-b"

    def test_a_case_claim_handed_back_is_settled_by_one_node(
        self, adopter: NodeJobStore, mine: NodeJobStore, other: NodeJobStore
    ) -> None:
        # A case folder's claim is its files' own: one file batched, one still waiting.
        upper = _dropped(mine, "/nas/inbox-x", "C-7/upper.stl", "sha256:upper")
        lower = _dropped(mine, "/nas/inbox-x", "C-7/lower.stl", "sha256:lower")
        assert mine.claim_inbox_file("pc-a", "/nas/inbox-x/C-7", "sha256:case")
        build, _ = mine.create_claimed_build("pc-a", recipe="dental", job_ids=[upper.id])
        assert mine.hand_back_jobs("pc-a", [lower.id]) == (lower.id,)

        assert adopter.may_settle("pc-b", build.id)
        assert not other.may_settle("pc-other", build.id)
        assert _claims(adopter) == {"/nas/inbox-x/C-7": "pc-b"}

    def test_a_hand_back_meeting_an_adoption_waits_for_it_and_takes_nothing(
        self, mine: NodeJobStore, node: NodeFactory, pg_url: str
    ) -> None:
        # pc-a stalled past its lease at its start: pc-c adopts its claim (lease 0: pc-a's
        # last beat is past) while pc-a, awake, hands the same job back. The hand-back's
        # UPDATE meets pc-c's uncommitted one on the claim row, waits, and then finds the
        # claim no longer its own: the job is pc-c's alone.
        job = _dropped(mine, "/nas/inbox-x", "upper.stl", "sha256:upper")
        assert mine.claim_inbox_file("pc-a", "/nas/inbox-x/upper.stl", "sha256:upper")
        handed: list[tuple[int, ...]] = []
        hand_back = threading.Thread(
            target=lambda: handed.append(mine.hand_back_jobs("pc-a", [job.id])), daemon=True)
        armed: list[bool] = []

        def before(statement: str) -> None:
            if statement == "COMMIT" and armed:  # pc-c's adoption, written, not committed
                armed.clear()
                hand_back.start()
                wait_for(lambda: lock_waiters(pg_url, event="transactionid") == 1
                         or not hand_back.is_alive(), WAIT_S, what="the hand-back to wait")
                assert hand_back.is_alive(), "the hand-back did not wait for the adoption"

        adopter = node("pc-c", on_statement=before)
        armed.append(True)
        assert adopter.adopt_orphan_jobs("pc-c", lease_s=0) == (job.id,)
        hand_back.join(WAIT_S)
        assert handed == [()]
        assert _claims(adopter) == {"/nas/inbox-x/upper.stl": "pc-c"}
