"""One truth on every page (session 35): the queue, History's Failed filter and ``/metrics``
follow Failed cases' superseded rule (store/superseded.py); a superseded failure offers no
Retry, and the dashboard's Retry looks for the file as ``jobs retry`` does
(hotfolder/whereabouts.py), judging nothing gone from a machine that does not see the inbox.
A real SQLite store, the dashboard served by uvicorn."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
from structlog.testing import capture_logs

from preform_pipeline.clock import ManualClock
from preform_pipeline.store import Job, JobState, SqliteJobStore
from preform_pipeline.web.views import HistoryPage, QueueFilter, history_rows
from tests.unit.web import clients
from tests.unit.web.conftest import (
    OPERATOR_SECRET,
    VIEWER_AUTH,
    Served,
    ended_job,
    failed_print,
    followed,
    listed_cases,
    logged_in,
    refused,
    taken_job,
)

S = JobState
WHY = ("a later job is printing or printed the same file (or a new export of it in its case) "
       "with the same recipe")


def _cases_of(page: HistoryPage) -> list[str]:
    return [r.case.case for r in page.rows]


@contextmanager
def _counted_failures(clock: ManualClock, tmp: Path, cases: int
                      ) -> Iterator[tuple[SqliteJobStore, list[str]]]:
    """A store of ``cases`` failed cases a second apart (``C-00`` the oldest), each its own
    file, and the statements it runs (``on_statement``)."""
    statements: list[str] = []
    with SqliteJobStore(tmp / "jobs.sqlite3", clock=clock,
                        on_statement=statements.append) as store:
        for n in range(cases):
            ended_job(store, tmp, f"C-{n:02}", S.FAILED, digest=f"d-{n}")
            clock.advance(1)
        yield store, statements


def _history_limits(statements: list[str]) -> list[int]:
    """The LIMITs of History's reads of cases among ``statements``, in order."""
    return [int(m) for s in statements if "AS page ON" in s
            for m in re.findall(r"LIMIT (\d+)", s)]


def _history_cases(page: str) -> list[str]:
    return re.findall(r'<details class="card history" data-case="([^"]*)"', page)


def _done(client: httpx.Client, answer: httpx.Response) -> str:
    """Follow an action that was done to its page, and return the line saying what it did."""
    assert answer.status_code == 303, answer.text[:500]
    page = client.get(answer.headers["location"]).text
    found = re.search(r'<p class="done" role="status" id="done">([^<]*)</p>', page)
    assert found is not None, page[:2000]
    return html.unescape(found.group(1))


def _killed_and_printed(served: Served, tmp: Path) -> tuple[Job, Job, Job]:
    """K-1 failed (a killed run), K-2 printed the same file later; N-1 failed, never
    printed since."""
    store = served.store
    return (ended_job(store, tmp, "K-1", S.FAILED), ended_job(store, tmp, "K-2", S.DONE),
            ended_job(store, tmp, "N-1", S.FAILED, digest="other"))


class TestOneRuleOnEveryPage:
    """The queue, History and ``/metrics`` say what Failed cases says of a failure that a
    later job of its recipe and file printed: nothing to act on, counted apart."""

    def test_the_queue_showing_failed_leaves_it_out_counts_it_and_lists_it_on_request(
        self, served: Served, tmp_path: Path
    ) -> None:
        _, later, _ = _killed_and_printed(served, tmp_path)
        page = clients.get(served.url + "/?state=failed", headers=VIEWER_AUTH).text
        assert listed_cases(page) == ["N-1"]
        assert (f'<p class="note" id="superseded">1 failed job not listed: {WHY}. '
                '<a href="/?state=failed&amp;superseded=listed">List them too</a></p>') in page
        listed = clients.get(served.url + "/?state=failed&superseded=listed",
                           headers=VIEWER_AUTH).text
        assert sorted(listed_cases(listed)) == ["K-1", "N-1"]
        said = html.unescape(re.sub(r"<[^>]+>", "", listed))
        assert (f"K-1.stl: superseded by job {later.id} ({later.job_key}, done); {WHY}"
                in said)
        assert said.count("superseded: nothing to do") == 1
        assert '<a href="/?state=failed">Leave them out</a>' in listed

    def test_history_showing_failed_leaves_it_out_too(
        self, served: Served, tmp_path: Path
    ) -> None:
        _killed_and_printed(served, tmp_path)
        page = clients.get(served.url + "/history?state=failed", headers=VIEWER_AUTH).text
        assert _history_cases(page) == ["N-1"]
        assert f"1 failed job not listed: {WHY}." in page
        everything = clients.get(served.url + "/history", headers=VIEWER_AUTH).text
        assert {"K-1", "K-2", "N-1"} <= set(_history_cases(everything))
        assert 'id="superseded"' not in everything  # "All" lists every case: nothing left out

    def test_a_case_whose_failure_its_own_later_job_printed_is_shown_by_that_job(
        self, served: Served, tmp_path: Path
    ) -> None:
        # A run killed and run again under one case id: the case is printed, not failed.
        ended_job(served.store, tmp_path, "C-9", S.FAILED)
        ended_job(served.store, tmp_path, "C-9", S.DONE)
        queue = clients.get(served.url + "/?state=all", headers=VIEWER_AUTH).text
        row = re.search(r'<tr data-case="C-9">(.*?)</tr>', queue, re.S)
        assert row is not None and 'class="state state-done"' in row.group(1)
        history = clients.get(served.url + "/history", headers=VIEWER_AUTH).text
        card = re.search(r'data-case="C-9">\s*<summary>(.*?)</summary>', history, re.S)
        assert card is not None and 'class="state state-done"' in card.group(1)
        failed = clients.get(served.url + "/history?state=failed", headers=VIEWER_AUTH).text
        assert "C-9" not in _history_cases(failed)

    def test_metrics_count_it_apart_under_a_name_of_its_own(
        self, served: Served, tmp_path: Path
    ) -> None:
        _killed_and_printed(served, tmp_path)
        text = clients.get(served.url + "/metrics", headers=VIEWER_AUTH).text
        assert 'preform_pipeline_cases{state="failed"} 1\n' in text
        assert "\npreform_pipeline_cases_superseded 1\n" in text
        assert "# TYPE preform_pipeline_cases_superseded gauge" in text


class TestACaseExportedAgain:
    """Session 47's dental trial: C-2001 rejected, exported again with new content (the same
    case and file) and printed, stayed on Failed cases; now it is put right there too."""

    def test_failed_cases_leaves_it_out_and_the_metrics_count_it_apart(
        self, served: Served, tmp_path: Path
    ) -> None:
        ended_job(served.store, tmp_path, "C-2001", S.FAILED, digest="first-export")
        ended_job(served.store, tmp_path, "C-2001", S.VERIFYING, digest="second-export")
        ended_job(served.store, tmp_path, "N-1", S.FAILED, digest="other")
        page = clients.get(served.url + "/failed", headers=VIEWER_AUTH).text
        assert listed_cases(page) == ["N-1"]
        assert f"1 failed job not listed: {WHY}." in html.unescape(page)
        text = clients.get(served.url + "/metrics", headers=VIEWER_AUTH).text
        assert "\npreform_pipeline_cases_superseded 1\n" in text


class TestHistoryPages:
    """History places a case by the state a person would name (its superseded failure left
    out, unless listed), and fills each page: no case on two pages, none on none."""

    def test_a_case_left_out_leaves_the_next_page_s_case_on_the_next_page(
        self, store: SqliteJobStore, clock: ManualClock, tmp_path: Path
    ) -> None:
        for case_id, digest in (("Z", "d-z"), ("Y", "d-y"), ("X", "d-x"), ("W", "d-w")):
            ended_job(store, tmp_path, case_id, S.FAILED, digest=digest)
            clock.advance(1)
        ended_job(store, tmp_path, "P", S.DONE, digest="d-x")  # X is put right
        first = history_rows(store, QueueFilter(state="failed"), limit=2)
        assert (_cases_of(first), bool(first.older), first.hidden) == (["W", "Y"], True, 1)
        for second in (history_rows(store, QueueFilter(state="failed", page=2), limit=2),
                       history_rows(store, followed(first.older), limit=2)):
            assert (_cases_of(second), second.older) == (["Z"], "")

    def test_every_page_but_the_last_is_full_and_each_left_out_is_counted_once(
        self, store: SqliteJobStore, clock: ManualClock, tmp_path: Path
    ) -> None:
        # Newest first: V W X Y Z A; X and A put right by later jobs of other cases.
        for case_id in ("A", "Z", "Y", "X", "W", "V"):
            ended_job(store, tmp_path, case_id, S.FAILED, digest=f"d-{case_id}")
            clock.advance(1)
        ended_job(store, tmp_path, "P", S.DONE, digest="d-X")
        ended_job(store, tmp_path, "Q", S.DONE, digest="d-A")
        pages = [history_rows(store, QueueFilter(state="failed", page=n), limit=2)
                 for n in (1, 2, 3)]
        expected = [(["V", "W"], True, 0), (["Y", "Z"], False, 2), ([], False, 0)]
        assert [(_cases_of(p), bool(p.older), p.hidden) for p in pages] == expected
        # The same pages by their links: Older, then Newer back.
        second = history_rows(store, followed(pages[0].older), limit=2)
        assert (_cases_of(second), bool(second.older), second.hidden) == expected[1]
        back = history_rows(store, followed(second.newer), limit=2)
        assert (_cases_of(back), bool(back.older), back.hidden) == expected[0]

    def test_a_page_short_of_cases_reads_what_it_lacks_not_the_whole_store(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        with _counted_failures(clock, tmp_path, 20) as (store, statements):
            for n in (17, 18, 19):  # the three newest put right: left out of Failed
                ended_job(store, tmp_path, f"P-{n}", S.DONE, digest=f"d-{n}")
            statements.clear()
            page = history_rows(store, QueueFilter(state="failed", page=5), limit=2)
        assert (_cases_of(page), bool(page.older), page.hidden) == (["C-08", "C-07"], True, 0)
        # The pages up to it and one case more (11), then twice the 3 still wanted.
        assert _history_limits(statements) == [11, 6]

    def test_a_deep_page_by_its_link_reads_only_its_own_cases(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        with _counted_failures(clock, tmp_path, 12) as (store, statements):
            link = QueueFilter(state="failed").link(1)
            for _ in range(4):  # the Older links of pages 1 to 4
                link = history_rows(store, followed(link), limit=2).older
            statements.clear()
            page = history_rows(store, followed(link), limit=2)
        assert (page.number, _cases_of(page)) == (5, ["C-03", "C-02"])
        # Its two cases and one beyond (an older page exists), not the eight before it.
        assert _history_limits(statements) == [3]

    def test_a_case_changed_between_two_pages_is_not_shown_on_both(
        self, store: SqliteJobStore, clock: ManualClock, tmp_path: Path
    ) -> None:
        for case_id in ("D", "C", "B", "A"):  # A the newest
            ended_job(store, tmp_path, case_id, S.FAILED, digest=f"d-{case_id}")
            clock.advance(1)
        first = history_rows(store, QueueFilter(state="all"), limit=2)
        assert _cases_of(first) == ["A", "B"]
        # A new case arrives before the person opens the next page.
        ended_job(store, tmp_path, "N", S.FAILED, digest="d-n")
        second = history_rows(store, followed(first.older), limit=2)
        # The next page is the cases older than B: an offset of two cases now lands on B
        # (N A | B C), which the page before showed.
        assert _cases_of(second) == ["C", "D"]

    def test_each_filter_places_a_case_by_its_job_that_was_not_put_right(
        self, store: SqliteJobStore, clock: ManualClock, tmp_path: Path
    ) -> None:
        # R's run was killed; run again under the same case, the same file is printing now.
        ended_job(store, tmp_path, "R", S.FAILED, digest="d-r")
        clock.advance(1)
        ended_job(store, tmp_path, "R", S.VERIFYING, digest="d-r")

        def placed(state: str, listed: bool = False) -> tuple[list[tuple[str, S]], int]:
            page = history_rows(store, QueueFilter(state=state, listed=listed))
            return [(r.case.case, r.case.state) for r in page.rows], page.hidden

        assert placed("printing") == ([("R", S.VERIFYING)], 1)
        assert placed("failed") == ([], 1)
        assert placed("all") == ([("R", S.VERIFYING)], 0)
        # Listed, its failure is shown in it, and places it under Failed too.
        assert placed("failed", listed=True) == ([("R", S.VERIFYING)], 0)
        assert placed("printing", listed=True) == ([("R", S.VERIFYING)], 0)

    def test_another_page_of_a_listed_view_keeps_them_listed(self) -> None:
        flt = QueueFilter.parse({"state": "failed", "superseded": "listed"})
        assert flt.listed and flt.link(2) == "state=failed&superseded=listed&page=2"
        assert QueueFilter.parse({"state": "failed"}).link(2) == "state=failed&page=2"


class TestAFailedPrintTheNextRunPrinted:
    """A print the printer reported failed, whose file the next cron ``run`` printed again
    unasked (docs/printing.md), is put right: Failed cases leaves it out and offers no Retry
    (session 48's trial: every failed print stayed listed, its Retry a job no run took)."""

    def test_failed_cases_leaves_it_out_and_lists_it_on_request_without_a_retry(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        failed_print(store, tmp_path, "P-1")
        again = ended_job(store, tmp_path, "P-2", S.VERIFYING)
        page = clients.get(served.url + "/failed", headers=VIEWER_AUTH).text
        assert listed_cases(page) == []
        assert f"1 failed job not listed: {WHY}." in html.unescape(page)
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            listed = client.get("/failed?superseded=listed").text
        assert listed_cases(listed) == ["P-1"]
        assert 'data-test="retry-P-1"' not in listed
        assert (f"superseded by job {again.id} ({again.job_key}, verifying)"
                in html.unescape(re.sub(r"<[^>]+>", "", listed)))
        # /metrics by the same rule: counted apart, not among the cases in print_error.
        text = clients.get(served.url + "/metrics", headers=VIEWER_AUTH).text
        assert 'preform_pipeline_cases{state="print_error"} 0\n' in text
        assert "\npreform_pipeline_cases_superseded 1\n" in text

    def test_while_its_reprint_is_only_sent_it_stays_on_failed_cases_with_a_retry(
        self, served: Served, tmp_path: Path
    ) -> None:
        # A print sent may never start (a printer offline) or fail in turn: until it prints,
        # the failure still needs a person (session 49), on the page and in /metrics alike.
        store = served.store
        failed_print(store, tmp_path, "P-1")
        ended_job(store, tmp_path, "P-2", S.PRINT_SENT)
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            page = client.get("/failed").text
        assert listed_cases(page) == ["P-1"]
        assert 'data-test="retry-P-1"' in page
        text = clients.get(served.url + "/metrics", headers=VIEWER_AUTH).text
        assert 'preform_pipeline_cases{state="print_error"} 1\n' in text
        assert "\npreform_pipeline_cases_superseded 0\n" in text


class TestRetryOfASupersededFailure:
    """A failure a later job printed offers no Retry: retried, it printed the file again."""

    def test_no_retry_button_and_a_retry_posted_anyway_is_refused_in_words(
        self, served: Served, tmp_path: Path
    ) -> None:
        killed, later, _ = _killed_and_printed(served, tmp_path)
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            page = client.get("/failed?superseded=listed").text
            assert 'data-test="retry-K-1"' not in page and 'data-test="retry-N-1"' in page
            # From a page opened before the later job printed it, say.
            answer = refused(client, client.post("/cases/retry", data={
                "csrf": csrf, "target": "case:K-1", "next": "/failed?superseded=listed"}))
        assert answer.said == (
            f"Not done: Case K-1 was not queued again: {WHY} (K-1.stl: superseded by job "
            f"{later.id} ({later.job_key}, done))\nthere is nothing to retry; to print it "
            f"once more anyway: preform-pipeline jobs retry --force {killed.job_key}")
        assert served.store.get_job(killed.id).state is S.FAILED

    def test_a_case_retries_its_other_failure_and_says_what_it_left(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        put_right = ended_job(store, tmp_path, "M-1", S.FAILED, digest="m-a")
        other = ended_job(store, tmp_path, "M-1", S.FAILED, digest="m-b")
        ended_job(store, tmp_path, "P-1", S.DONE, digest="m-a")
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            said = _done(client, client.post("/cases/retry", data={
                "csrf": csrf, "target": "case:M-1", "next": "/failed"}))
        assert said == ("Case M-1 queued again (1 job); 1 of its failed jobs left as they "
                        f"are: {WHY}")
        assert (store.get_job(put_right.id).state, store.get_job(other.id).state) == (
            S.FAILED, S.QUEUED)


class TestRetryLooksForTheFile:
    """The Retry button asks where the file is, as ``jobs retry`` does: queued without its
    file, the daemon failed the job again after the page had said it was queued."""

    def test_a_file_gone_is_refused_on_the_page_then_queued_once_put_back(
        self, served: Served, tmp_path: Path
    ) -> None:
        job = taken_job(served.store, tmp_path, "H-1")
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        form = {"csrf": csrf, "target": "case:H-1", "next": "/failed"}
        with closing(client):
            with capture_logs() as events:
                answer = refused(client, client.post("/cases/retry", data=form))
            assert answer.location.startswith("/failed?done=")
            assert answer.said == (
                f"Not done: Case H-1 was not queued again: upper.stl ({job.job_key}): its file "
                f"{job.source_path}: not there now (moved or removed since); put it back at "
                f"{job.source_path} and retry, or drop it into the hot folder again "
                f"({tmp_path / 'hot' / 'inbox'}) as a new job\nnothing was queued again")
            assert served.store.get_job(job.id).state is S.FAILED
            job.source_path.parent.mkdir(parents=True)
            job.source_path.write_bytes(b"solid x\nendsolid x\n")
            assert _done(client, client.post("/cases/retry", data=form)) == (
                "Case H-1 queued again (1 job)")
        assert served.store.get_job(job.id).state is S.QUEUED
        assert [e["event"] for e in events if e["event"].startswith("web_")] == [
            "web_action_refused"]

    def test_an_inbox_this_machine_does_not_see_is_said_and_not_judged_gone(
        self, served: Served, tmp_path: Path
    ) -> None:
        job = taken_job(served.store, tmp_path, "H-2", inbox_here=False)
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            said = _done(client, client.post("/cases/retry", data={
                "csrf": csrf, "target": "case:H-2", "next": "/failed"}))
        assert said == (
            f"Case H-2 queued again (1 job); upper.stl: its hot folder's inbox "
            f"{tmp_path / 'hot' / 'inbox'} is not seen from this machine, so its file was not "
            "looked for here; the hot folder watching that inbox takes it again, or fails it "
            f"\"its file is gone\" if it is not at {job.source_path}")
        assert served.store.get_job(job.id).state is S.QUEUED


def _one_file_gone(served: Served, tmp_path: Path, case: str
                   ) -> tuple[Job, Job, httpx.Client, str]:
    """A failed case of two files, ``upper.stl`` gone and ``lower.stl`` there, and an
    operator's client logged in (with its CSRF token)."""
    gone = taken_job(served.store, tmp_path, case)
    kept = taken_job(served.store, tmp_path, case, name="lower.stl", there=True)
    client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
    return gone, kept, client, csrf


def _gone_words(gone: Job, tmp_path: Path) -> str:
    """What the dashboard says of ``gone``'s file (``taken_job``'s, not there): where it
    was looked for and what helps."""
    return (f"its file {gone.source_path}: not there now (moved or removed since); put it "
            f"back at {gone.source_path} and retry, or drop it into the hot folder again "
            f"({tmp_path / 'hot' / 'inbox'}) as a new job")


class TestACaseWithAFileGone:
    """Failed cases shows a case one of whose files is gone whole, that file marked missing
    (where it was looked for, what helps), and retries its other files on request; a Retry
    of the whole case (a page opened before, or the queue) is refused, saying the way."""

    def test_the_file_is_marked_and_the_others_are_retried(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        gone, kept, client, csrf = _one_file_gone(served, tmp_path, "H-3")
        with closing(client):
            page = html.unescape(client.get("/failed").text)
            assert listed_cases(page) == ["H-3"]
            said = _gone_words(gone, tmp_path)
            assert (f'<span class="file missing" data-test="missing-{gone.job_key}">'
                    f'upper.stl</span> <small class="missing">missing: {said}</small>') in page
            assert f'<span class="file">{kept.source_path}</span>' in page
            assert ("1 file of this case is missing: Retry the other 1 queues the rest again "
                    "and leaves it as it is, as <code>preform-pipeline jobs retry case:H-3"
                    "</code> does.") in page
            assert '<input type="hidden" name="others" value="yes">' in page
            assert ">Retry the other 1</button>" in page
            form = {"csrf": csrf, "target": "case:H-3", "next": "/failed"}
            # The whole case (a page opened before the file went, or the queue's Retry).
            answer = refused(client, client.post("/cases/retry", data=form))
            assert answer.said == (
                f"Not done: Case H-3 was not queued again: upper.stl ({gone.job_key}): "
                f"{said}\nnothing was queued again; to queue its other 1 file again without "
                "it: Retry the others on Failed cases, or preform-pipeline jobs retry case:H-3")
            assert store.get_job(kept.id).state is S.FAILED
            done = _done(client, client.post("/cases/retry", data={**form, "others": "yes"}))
        assert done == (f"Case H-3 queued again (1 job); left as it is: upper.stl "
                        f"({gone.job_key}): {said}")
        assert (store.get_job(gone.id).state, store.get_job(kept.id).state) == (
            S.FAILED, S.QUEUED)

    def test_a_case_all_of_whose_files_are_gone_offers_no_retry(
        self, served: Served, tmp_path: Path
    ) -> None:
        store = served.store
        gone = taken_job(store, tmp_path, "H-4")
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            page = html.unescape(client.get("/failed").text)
            assert f'data-test="missing-{gone.job_key}"' in page
            assert 'data-test="retry-H-4"' not in page
            assert "1 file of this case is missing." in page
            answer = refused(client, client.post("/cases/retry", data={
                "csrf": csrf, "target": "case:H-4", "next": "/failed", "others": "yes"}))
        assert answer.said.endswith("\nnothing was queued again")
        assert store.get_job(gone.id).state is S.FAILED

    def test_the_queue_marks_it_too_and_retries_the_others(
        self, served: Served, tmp_path: Path
    ) -> None:
        # Session 37 left the queue's row showing nothing amiss, its Retry refused whole.
        store = served.store
        gone, kept, client, csrf = _one_file_gone(served, tmp_path, "H-5")
        with closing(client):
            page = html.unescape(client.get("/?state=failed").text)
            row = re.search(r'<tr data-case="H-5">(.*?)</tr>', page, re.S)
            assert row is not None, page
            said = _gone_words(gone, tmp_path)
            # The rule and the words of Failed cases; the files named as dropped.
            assert (f'<span class="file missing" data-test="missing-{gone.job_key}">'
                    f'upper.stl</span> <small class="missing">missing: {said}</small>'
                    ) in row.group(1)
            assert '<span class="file">lower.stl</span>' in row.group(1)
            assert ("1 file of this case is missing: Retry the other 1 queues the rest again "
                    "and leaves it as it is, as <code>preform-pipeline jobs retry case:H-5"
                    "</code> does.") in row.group(1)
            assert ">Retry the other 1</button>" in row.group(1)
            done = _done(client, client.post("/cases/retry", data={
                "csrf": csrf, "target": "case:H-5", "next": "/?state=failed",
                "others": "yes"}))
        assert done.startswith("Case H-5 queued again (1 job); left as it is: upper.stl")
        assert (store.get_job(gone.id).state, store.get_job(kept.id).state) == (
            S.FAILED, S.QUEUED)
