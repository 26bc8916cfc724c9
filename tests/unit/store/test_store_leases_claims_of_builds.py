"""Which inbox claims go with a build's jobs (store/leases.py, real PostgreSQL): the jobs' own
claims (``_OWN_CLAIM``: the file as dropped, or the case folder it was dropped in), never a
claim that only shares their content. Two lookups use them: ``adopt_jobs`` (a node that
recovered a gone node's build takes its jobs' claims) and ``may_settle`` (which node's sweep
of processing/ may move a build's files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.store import Job, JobState
from preform_pipeline.store.fenced import NodeJobStore
from tests.unit.store.conftest import NodeFactory

_INBOX = "/nas/inbox"


def _dropped(store: NodeJobStore, rel: str, content: str) -> Job:
    """A job of ``content`` taken from ``rel`` in the shared inbox, its file in processing/."""
    place = JobPlace(Path(_INBOX), rel)
    return store.create_job(recipe="dental", source_path=f"/nas/processing/{rel}",
                            content_hash=content, state=JobState.PROCESSING,
                            fields={HOTFOLDER_FIELD: place.to_json()})


def _case(store: NodeJobStore) -> tuple[int, list[Job]]:
    """Case folder C-1042 (two files) claimed whole by ``store``'s node, its jobs in a build."""
    jobs = [_dropped(store, "C-1042/upper.stl", "sha256:upper"),
            _dropped(store, "C-1042/lower.stl", "sha256:lower")]
    assert store.claim_inbox_file(store.node_id, f"{_INBOX}/C-1042", "sha256:case")
    build = store.create_build(recipe="dental", job_ids=[j.id for j in jobs])
    return build.id, jobs


def _claims(store: NodeJobStore) -> dict[str, str]:
    return {path: holder for path, _, holder in store.inbox_claims()}


@pytest.fixture
def gone(node: NodeFactory) -> NodeJobStore:
    return node("pc-gone")


@pytest.fixture
def recoverer(node: NodeFactory) -> NodeJobStore:
    return node("pc-b")


class TestARecoveredCaseBuildsClaim:
    """A node that recovers a gone node's case build takes the case folder's claim with it."""

    def test_a_third_node_finds_no_orphans_once_the_build_is_taken_apart(
        self, gone: NodeJobStore, recoverer: NodeJobStore, node: NodeFactory
    ) -> None:
        _, jobs = _case(gone)
        gone.node_stopped("pc-gone")
        third = node("pc-c")

        assert recoverer.adopt_jobs("pc-b", [j.id for j in jobs]) == ()
        for job in jobs:  # taken apart, as recovery does before it batches them again
            recoverer.update_job(job.id, build_id=None)
        assert recoverer.adopt_jobs("pc-b", [j.id for j in jobs]) == ()  # a retry: none new

        assert third.adopt_orphan_jobs("pc-c") == ()
        assert _claims(third) == {f"{_INBOX}/C-1042": "pc-b"}
        assert all(third.get_job(j.id).build_id is None for j in jobs)


    def test_the_case_s_files_left_out_of_the_build_come_with_its_claim(
        self, gone: NodeJobStore, recoverer: NodeJobStore, node: NodeFactory
    ) -> None:
        # The gone node had put one file of the case in a build (a split's first half) and
        # not yet the other: the recovering node is told to take that one up as well.
        upper = _dropped(gone, "C-1042/upper.stl", "sha256:upper")
        lower = _dropped(gone, "C-1042/lower.stl", "sha256:lower")
        _dropped(gone, "bracket.stl", "sha256:bracket")  # another file of the gone node's
        assert gone.claim_inbox_file("pc-gone", f"{_INBOX}/C-1042", "sha256:case")
        assert gone.claim_inbox_file("pc-gone", f"{_INBOX}/bracket.stl", "sha256:bracket")
        gone.create_build(recipe="dental", job_ids=[upper.id])
        gone.node_stopped("pc-gone")

        assert recoverer.adopt_jobs("pc-b", [upper.id]) == (lower.id,)
        assert _claims(recoverer) == {f"{_INBOX}/C-1042": "pc-b",
                                      f"{_INBOX}/bracket.stl": "pc-gone"}


class TestARecoveredJobOfDuplicateContent:
    """Of two files of one content (``duplicates: print``), only the recovered job's claim
    moves; the live node's stays its own."""

    def test_the_live_node_keeps_its_claim(
        self, gone: NodeJobStore, recoverer: NodeJobStore, node: NodeFactory
    ) -> None:
        live = node("pc-live")
        orphan = _dropped(gone, "bracket.stl", "sha256:bracket")
        assert gone.claim_inbox_file("pc-gone", f"{_INBOX}/bracket.stl", "sha256:bracket")
        gone.create_build(recipe="dental", job_ids=[orphan.id])
        _dropped(live, "bracket-copy.stl", "sha256:bracket")
        assert live.claim_inbox_file("pc-live", f"{_INBOX}/bracket-copy.stl", "sha256:bracket")
        gone.node_stopped("pc-gone")

        assert recoverer.adopt_jobs("pc-b", [orphan.id]) == ()

        assert _claims(recoverer) == {f"{_INBOX}/bracket.stl": "pc-b",
                                      f"{_INBOX}/bracket-copy.stl": "pc-live"}


class TestWhoMaySettleACaseBuild:
    """A case build's files are its claimant's to settle while it lives, then another's."""

    def test_refused_while_the_claimant_lives_and_passed_on_once_it_is_gone(
        self, gone: NodeJobStore, recoverer: NodeJobStore
    ) -> None:
        build, _ = _case(gone)

        assert recoverer.may_settle("pc-b", build) is False
        assert gone.may_settle("pc-gone", build) is True
        gone.node_stopped("pc-gone")
        assert recoverer.may_settle("pc-b", build) is True
        assert _claims(recoverer) == {f"{_INBOX}/C-1042": "pc-b"}
        assert gone.may_settle("pc-gone", build) is False


class TestWhoMaySettleAFileOfDuplicateContent:
    """A live node's claim of the same content (another file) does not hold a build back."""

    def test_the_claimant_and_after_it_another_node_settle_the_build(
        self, gone: NodeJobStore, recoverer: NodeJobStore, node: NodeFactory
    ) -> None:
        live = node("pc-live")
        _dropped(live, "bracket-copy.stl", "sha256:bracket")
        assert live.claim_inbox_file("pc-live", f"{_INBOX}/bracket-copy.stl", "sha256:bracket")
        orphan = _dropped(gone, "bracket.stl", "sha256:bracket")
        assert gone.claim_inbox_file("pc-gone", f"{_INBOX}/bracket.stl", "sha256:bracket")
        build = gone.create_build(recipe="dental", job_ids=[orphan.id]).id

        assert gone.may_settle("pc-gone", build) is True
        assert live.may_settle("pc-live", build) is False
        gone.node_stopped("pc-gone")
        assert recoverer.may_settle("pc-b", build) is True
        assert _claims(recoverer) == {f"{_INBOX}/bracket.stl": "pc-b",
                                      f"{_INBOX}/bracket-copy.stl": "pc-live"}
