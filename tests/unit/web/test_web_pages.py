"""What the pages and /metrics say about the store: states, reasons, waits and counts."""

from __future__ import annotations

import html
import re
from contextlib import closing
from pathlib import Path

from preform_pipeline.printing.approval import approve
from preform_pipeline.store import JobState
from tests.unit.web import clients
from tests.unit.web.conftest import (
    OPERATOR_SECRET,
    VIEWER_SECRET,
    Served,
    ended_job,
    logged_in,
    refused,
)

AUTH = {"Authorization": f"Bearer victor:{VIEWER_SECRET}"}


def _metric(text: str, line_start: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(line_start + " "))
    return float(line.rsplit(" ", 1)[1])


class TestMetrics:
    """/metrics reads the store at each scrape, in Prometheus text."""

    def test_cases_builds_and_prints_are_counted_by_state(self, served: Served) -> None:
        answer = clients.get(served.url + "/metrics", headers=AUTH)
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = answer.text
        assert _metric(text, 'preform_pipeline_cases{state="awaiting_approval"}') == 1
        assert _metric(text, 'preform_pipeline_builds{state="awaiting_approval"}') == 1
        assert _metric(text, "preform_pipeline_builds_prepared") == 1
        assert _metric(text, "preform_pipeline_prints_sent") == 0
        # serve without the daemon has no pool and no Web API client: no made-up zeros.
        assert "pool_servers" not in text and "web_api_requests_used" not in text

    def test_a_settled_print_moves_the_counts(self, served: Served) -> None:
        store = served.store
        build = store.transition_build(served.held_id, JobState.WAITING_FOR_PRINTER, "ok")
        store.transition_build(build.id, JobState.PRINT_SENDING, "sending", printer="Bench-A")
        store.transition_build(build.id, JobState.PRINT_SENT, "sent")
        store.transition_build(build.id, JobState.PRINT_ERROR, "tank error")
        text = clients.get(served.url + "/metrics", headers=AUTH).text
        assert _metric(text, "preform_pipeline_prints_sent") == 1
        assert _metric(text, "preform_pipeline_prints_failed") == 1
        assert _metric(text, "preform_pipeline_prints_verified") == 1


class TestPages:
    """Each page shows the store's rows with why they wait."""

    def test_the_queue_shows_the_case_its_state_and_why_it_waits(
        self, served: Served
    ) -> None:
        page = clients.get(served.url + "/", headers=AUTH).text
        assert "C-7" in page and "awaiting approval" in page
        assert "waits for an operator&#39;s approval, then for Bench-A" in page

    def test_the_queue_filters_by_state_and_text(self, served: Served) -> None:
        assert "C-7" in clients.get(served.url + "/?state=approval", headers=AUTH).text
        assert "C-7" not in clients.get(served.url + "/?state=failed", headers=AUTH).text
        assert "C-7" not in clients.get(served.url + "/?q=C-8", headers=AUTH).text

    def test_a_live_request_gets_only_the_live_part(self, served: Served) -> None:
        part = clients.get(served.url + "/", headers={**AUTH, "X-Live": "1"}).text
        assert "C-7" in part and "<html" not in part

    def test_printers_without_a_live_source_say_so_and_list_what_waits(
        self, served: Served
    ) -> None:
        page = clients.get(served.url + "/printers", headers=AUTH).text
        assert "no live printer status here" in page
        # `watch --serve` says the same until its pool starts: no advice to run what it runs.
        assert "run `watch --serve`" not in page
        assert "once they have started (with the first batch or print)" in page

    def test_a_case_action_button_names_its_case_to_a_screen_reader(
        self, served: Served
    ) -> None:
        operator = {"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"}
        page = clients.get(served.url + "/", headers=operator).text
        assert 'aria-label="Cancel case C-7">Cancel</button>' in page
        assert "<h1>Queue</h1>" in page

    def test_a_case_awaiting_approval_offers_its_build_to_review_before_cancel(
        self, served: Served
    ) -> None:
        # Session 45's tablet trial: the way to approve was a small "build N" link at the end
        # of a long Why, and the one button on the case was Cancel.
        operator = {"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"}
        page = clients.get(served.url + "/", headers=operator).text
        row = re.search(r'<tr data-case="C-7">.*?</tr>', page, re.S)
        assert row is not None, page
        review = (f'<a class="button" href="/builds/{served.held_id}" '
                  f'data-test="review-{served.held_id}">Review build {served.held_id}</a>')
        assert review in row.group(0)
        assert row.group(0).index(review) < row.group(0).index('aria-label="Cancel case C-7"')

    def test_a_viewer_is_offered_no_review_button(self, served: Served) -> None:
        assert 'data-test="review-' not in clients.get(served.url + "/", headers=AUTH).text

    def test_a_case_approved_already_is_offered_none(self, served: Served) -> None:
        operator = {"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"}
        approve(served.store, served.held_id, "olivia")
        page = clients.get(served.url + "/", headers=operator).text
        assert '<tr data-case="C-7">' in page and 'data-test="review-' not in page

    def test_failed_cases_show_the_operators_reason_and_history_the_trail(
        self, served: Served
    ) -> None:
        operator = {"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"}
        answer = clients.post(f"{served.url}/builds/{served.held_id}/reject",
                            data={"reason": "margin cut"}, headers=operator)
        assert answer.status_code == 303
        failed = clients.get(served.url + "/failed", headers=AUTH).text
        assert "rejected by olivia (web): margin cut" in failed
        history = clients.get(served.url + "/history", headers=AUTH).text
        assert "awaiting approval" in history and "rejected by olivia (web)" in history

    def test_a_cases_reason_is_said_once_and_its_files_listed(
        self, served: Served, tmp_path: Path
    ) -> None:
        # Session 32: a five-file case refused for its sidecar said its reason five times, run
        # together; two reasons are each said once, with the files they are for.
        def failed(name: str, reason: str) -> None:
            job = served.store.create_job(recipe="crowns", source_path=tmp_path / name,
                                          case_id="C-9", state=JobState.PROCESSING)
            served.store.transition(job.id, JobState.FAILED, reason)

        for name in ("a.stl", "b.stl", "c.stl"):
            failed(name, "the sidecar C-9.yaml is broken")
        page = clients.get(served.url + "/failed", headers=AUTH).text
        row = re.search(r'<tr data-case="C-9">(.*?)</tr>', page, re.S)
        assert row is not None, page
        reason = re.search(r'<td data-label="Reason" class="reason">(.*?)</td>', row.group(1),
                           re.S)
        assert reason is not None
        assert reason.group(1).count("the sidecar C-9.yaml is broken") == 1
        assert reason.group(1) == "<p>the sidecar C-9.yaml is broken</p>"
        assert [n for n in ("a.stl", "b.stl", "c.stl") if n in row.group(1)] == [
            "a.stl", "b.stl", "c.stl"]

        failed("d.stl", "too large for the platform")
        page = clients.get(served.url + "/failed", headers=AUTH).text
        row = re.search(r'<tr data-case="C-9">(.*?)</tr>', page, re.S)
        assert row is not None
        cell = re.search(r'class="reason">(.*?)</td>', row.group(1), re.S)
        assert cell is not None
        said = [html.unescape(re.sub(r"<[^>]+>", "", p))
                for p in re.findall(r"<p>(.*?)</p>", cell.group(1), re.S)]
        assert said == ["the sidecar C-9.yaml is brokenfor a.stl, b.stl, c.stl",
                        "too large for the platformfor d.stl"]

    def test_a_missing_build_is_a_404_page(self, served: Served) -> None:
        assert clients.get(served.url + "/builds/999", headers=AUTH).status_code == 404

    def test_a_build_id_beyond_64_bits_is_a_404_page_and_an_action_says_no_such_build(
        self, served: Served
    ) -> None:
        huge = str(2**64)
        for path in (f"/builds/{huge}", f"/builds/{huge}/screenshot"):
            assert clients.get(served.url + path, headers=AUTH).status_code == 404, path
        acted = clients.post(
            f"{served.url}/builds/{huge}/approve",
            headers={"Authorization": f"Bearer olivia:{OPERATOR_SECRET}", "Origin": served.url,
                     "Sec-Fetch-Site": "same-origin"},
        )
        assert acted.status_code == 404 and f"no build {huge}" in acted.text

    def test_a_scripts_action_on_a_build_that_does_not_exist_is_a_404(
        self, served: Served
    ) -> None:
        # Not a 409: no one decided first; there is nothing to decide.
        for action, form in (("approve", {}), ("reject", {"reason": "warped"})):
            acted = clients.post(f"{served.url}/builds/999/{action}", data=form,
                               headers={"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"})
            assert acted.status_code == 404, action
            assert "no build 999" in acted.text

    def test_a_missing_build_is_said_without_the_stores_path(self, served: Served) -> None:
        # The store's message began with its file's path ("/srv/.../jobs.sqlite3: no build
        # 999"), which the 404 and a browser's refusal line showed to whoever asked.
        where = served.store.location
        acted = clients.post(f"{served.url}/builds/999/approve",
                           headers={"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"})
        assert acted.status_code == 404
        assert "no build 999" in acted.text and where not in html.unescape(acted.text)
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            said = refused(client, client.post("/builds/999/reject",
                                               data={"csrf": csrf, "next": "/",
                                                     "reason": "warped"}))
        assert said.said == "Not done: no build 999"
        assert where not in html.unescape(said.page)


class TestWrongAddresses:
    """A wrong address or a GET on an action gets the dashboard's page, with the way back;
    what scripts read keeps its kind."""

    def test_a_wrong_path_is_the_dashboards_not_found_page(self, served: Served) -> None:
        for path in ("/nope", "/builds/abc", "/static/nope.css"):
            answer = clients.get(served.url + path, headers=AUTH)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("text/html"), path
            page = answer.text
            assert "<h1>Not found</h1>" in page and f"There is no page at {path}." in page
            assert '<a href="/">Back to the queue</a>' in page
            assert '<a href="/printers"' in page  # the navigation: the same layout

    def test_a_get_on_an_action_says_it_is_done_with_a_button(self, served: Served) -> None:
        path = f"/builds/{served.held_id}/approve"
        answer = clients.get(served.url + path, headers=AUTH)
        assert answer.status_code == 405 and answer.headers["allow"] == "POST"
        assert (f"{path} is an action: it is done with a button on its page, and cannot be "
                "opened as a page.") in answer.text
        assert '<a href="/">Back to the queue</a>' in answer.text
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_a_script_route_answers_a_wrong_method_in_its_own_kind(
        self, served: Served
    ) -> None:
        health = clients.post(served.url + "/healthz")
        assert health.status_code == 405
        assert health.json() == {"status": "error", "error": "/healthz does not take a POST."}
        metrics = clients.post(served.url + "/metrics", headers=AUTH)
        assert metrics.status_code == 405
        assert metrics.headers["content-type"].startswith("text/plain")


class TestStaleActions:
    """An action on a build someone else decided meanwhile says so once, and changes nothing."""

    def test_a_second_approval_is_refused_with_the_state_and_the_hint_once(
        self, served: Served
    ) -> None:
        operator = {"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"}
        url = f"{served.url}/builds/{served.held_id}/approve"
        assert clients.post(url, headers=operator).status_code == 303
        again = clients.post(url, headers=operator)
        key = served.store.get_build(served.held_id).job_key
        assert again.status_code == 409
        assert (f"build {key} is not awaiting approval: prepared (.form saved); waits for a "
                "matching printer") in again.text
        assert again.text.count("someone decided already") == 1
        assert served.store.build_history(served.held_id)[-1].reason == (
            "approved by olivia (web)")


class TestTank:
    """The tank shown for a printer comes from whichever status describes it."""

    def test_the_local_api_device_and_a_nested_status_both_name_the_tank(self) -> None:
        from preform_pipeline.api.models import Device
        from preform_pipeline.web.views import _tank

        device = Device.from_json({"id": "Bench-A", "tank_id": "T-9",
                                   "tank_material_code": "FLGPGR05"})
        assert _tank(device) == "T-9 · FLGPGR05"
        assert _tank({"printer_status": {"tank": "T-7"}}) == "T-7"
        assert _tank({"status": "IDLE"}) == "" and _tank(None) == ""


class TestCaseActions:
    """Retry and cancel act on every job of a case their state allows, naming the user."""

    def test_cancel_then_retry_a_case_and_nothing_to_do_is_said(self, served: Served) -> None:
        from preform_pipeline.errors import PipelineError
        from preform_pipeline.web.actions import cancel_case, retry_case

        store = served.store
        assert cancel_case(store, "case:C-7", "olivia").count == 1
        job = store.list_jobs()[0]
        assert job.state is JobState.CANCELLED and job.reason == "cancelled by olivia (web)"
        try:
            cancel_case(store, "case:C-7", "olivia")
        except PipelineError as exc:
            assert exc.message == "Case C-7 was not cancelled: it is cancelled already"
        else:
            raise AssertionError("a second cancel was accepted")
        assert retry_case(store, job.job_key, "olivia").count == 1
        assert store.get_job(job.id).state is JobState.QUEUED


def _done(page: str) -> str | None:
    """The line that says what the last action did, if the page has it."""
    found = re.search(r'<p class="done" role="status" id="done">([^<]*)</p>', page)
    return found.group(1) if found else None


def _returns_to(location: str) -> str:
    """An action's redirect without the token that tells its page to say what was done."""
    found = re.fullmatch(r"(.*?)[?&]done=[\w-]+", location)
    assert found is not None, location
    return found.group(1)


class TestCaseActionsSaySo:
    """After Retry or Cancel the page says what was done, once; a refused one says why."""

    def test_a_cancel_then_a_retry_are_each_said_once_on_the_page_returned_to(
        self, served: Served
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            assert _done(client.get("/").text) is None
            acted = client.post("/cases/cancel", data={"csrf": csrf, "target": "case:C-7",
                                                       "next": "/?state=all"})
            back = acted.headers["location"]
            assert acted.status_code == 303 and _returns_to(back) == "/?state=all"
            assert _done(client.get(back, headers={"X-Live": "1"}).text) is None
            assert _done(client.get(back).text) == "Case C-7 cancelled (1 job)"
            assert _done(client.get(back).text) is None  # said once
            key = served.store.list_jobs()[0].job_key
            retried = client.post("/cases/retry",
                                  data={"csrf": csrf, "target": key, "next": "/failed"})
            assert _done(client.get(retried.headers["location"]).text) == (
                f"Job {key} queued again (1 job)")
        assert served.store.list_jobs()[0].state is JobState.QUEUED

    def test_the_line_is_on_the_page_that_did_the_action_not_another_tab(
        self, served: Served
    ) -> None:
        # The line was kept per session: another tab of the session loading a page between
        # the action and its redirect took the line, and the acting tab said nothing.
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            acted = client.post("/cases/cancel", data={"csrf": csrf, "target": "case:C-7",
                                                       "next": "/failed"})
            back = acted.headers["location"]
            assert _done(client.get("/failed").text) is None  # the other tab
            assert _done(client.get("/?state=all").text) is None
            forged = back.rsplit("=", 1)[0] + "=" + "x" * 11
            assert _done(client.get(forged).text) is None  # a token not given out
            page = client.get(back).text
            assert _done(page) == "Case C-7 cancelled (1 job)"
            # The page's own forms and links do not carry the token on.
            assert 'name="next" value="/failed"' in page and "done=" not in page

    def test_an_action_returns_to_the_filtered_page_it_was_done_on(
        self, served: Served
    ) -> None:
        # The forms' next= kept only the path: Cancel on page 2 of "All" came back to page 1
        # of "In progress".
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            page = client.get("/", params={"state": "all", "q": "C-7"}).text
            found = re.search(r'<input type="hidden" name="next" value="([^"]+)">', page)
            assert found is not None and found.group(1) == "/?state=all&amp;q=C-7"
            acted = client.post("/cases/cancel", data={
                "csrf": csrf, "target": "case:C-7", "next": html.unescape(found.group(1))})
        assert acted.status_code == 303
        assert _returns_to(acted.headers["location"]) == "/?state=all&q=C-7"

    def test_a_refused_cancel_says_the_case_is_cancelled_already(
        self, served: Served
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            form = {"csrf": csrf, "target": "case:C-7", "next": "/"}
            assert client.post("/cases/cancel", data=form).status_code == 303
            again = refused(client, client.post("/cases/cancel", data=form))
            assert "Case C-7 was not cancelled: it is cancelled already" in again.said
            # Only the refusal is said: not the first cancel's line, not later as done.
            assert _done(again.page) is None and _done(client.get("/").text) is None

    def test_a_sent_print_is_refused_saying_it_was_sent(self, served: Served) -> None:
        store = served.store
        build = store.transition_build(served.held_id, JobState.WAITING_FOR_PRINTER, "ok")
        store.transition_build(build.id, JobState.PRINT_SENDING, "sending", printer="Bench-A")
        store.transition_build(build.id, JobState.PRINT_SENT, "sent")
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            for action, done in (("cancel", "cancelled"), ("retry", "queued again")):
                answer = refused(client, client.post(
                    f"/cases/{action}", data={"csrf": csrf, "target": "case:C-7", "next": "/"}))
                assert f"Case C-7 was not {done}: its job is print sent" in answer.said
        assert store.list_jobs()[0].state is JobState.PRINT_SENT


class TestASkippedDuplicate:
    """A copy skipped as a duplicate is a failed case of its own, not part of its case's row."""

    def test_it_is_on_failed_cases_and_the_held_case_offers_no_retry(
        self, served: Served, tmp_path: Path
    ) -> None:
        # The copy's Retry sat in the row of C-7, held for approval, as the case's Retry (it
        # prepares and holds the same model again), and Failed cases left the copy out.
        copy = served.store.create_job(recipe="crowns", source_path=tmp_path / "C-7b.stl",
                                       case_id="C-7", state=JobState.PROCESSING)
        served.store.transition(copy.id, JobState.DUPLICATE_SKIPPED,
                                "same content as an earlier job")
        operator = {"Authorization": f"Bearer olivia:{OPERATOR_SECRET}"}
        failed = clients.get(served.url + "/failed", headers=operator).text
        rows = re.findall(r'<tr data-case="C-7"( data-copy="[^"]+")?>(.*?)</tr>', failed, re.S)
        assert [r[0] for r in rows] == [f' data-copy="{copy.job_key}"']
        assert "duplicate skipped" in rows[0][1]
        assert f'name="target" value="{copy.job_key}"' in rows[0][1]
        queue = clients.get(served.url + "/?state=all", headers=operator).text
        held = re.search(r'<tr data-case="C-7">(.*?)</tr>', queue, re.S)
        assert held is not None and "awaiting approval" in held.group(1)
        assert "Retry" not in held.group(1) and 'aria-label="Cancel case C-7"' in held.group(1)
        assert f'aria-label="Retry copy {copy.job_key} of case C-7"' in queue


    def test_its_reason_does_not_give_the_originals_old_state_as_current(
        self, served: Served, tmp_path: Path
    ) -> None:
        # "same content as job PP-… (processing)" read as the original's state on Failed cases
        # after the original had printed: the state was the one it had when the copy came.
        from preform_pipeline.hotfolder import Drop, Intake
        from preform_pipeline.hotfolder.testing import tetra_stl_bytes
        from preform_pipeline.settings.hotfolder import InboxSettings

        inbox = InboxSettings(path=tmp_path / "inbox", recipe=tmp_path / "crowns.yaml")
        intake, store = Intake(served.store, [inbox]), served.store
        taken = []
        for name in ("a.stl", "b.stl"):
            path = inbox.path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tetra_stl_bytes(5))
            taken.append(intake.take(Drop(inbox, path, "crowns", False, models=(path,))))
        (first,), (copy,) = taken[0].taken, taken[1].rejected
        build = store.create_build(recipe="crowns", job_ids=[first.id])
        for state in (JobState.PREPARING, JobState.PREPARED, JobState.PRINT_SENDING,
                      JobState.PRINT_SENT):
            store.transition_build(build.id, state, state.value)
        page = clients.get(served.url + "/failed", headers=AUTH).text
        row = re.search(rf'<tr data-case="{copy.job_key}" data-copy="[^"]+">(.*?)</tr>', page,
                        re.S)
        assert row is not None, page
        assert f"same content as job {first.job_key} (processing)" not in row.group(1)
        assert (f"same content as job {first.job_key} (processing when this copy was "
                "skipped)") in row.group(1)


class TestAPrinterCard:
    """A printer's card says what prints, what it takes next, and how many more: not every
    build held or waiting, one link each."""

    def test_the_card_names_the_next_three_and_counts_the_rest(
        self, served: Served, tmp_path: Path
    ) -> None:
        from preform_pipeline.web.actions import approve_build
        from tests.unit.web.conftest import held_build

        store = served.store
        printing = approve_build(store, held_build(store, tmp_path, "C-1"), "olivia")
        store.transition_build(printing.id, JobState.PRINT_SENDING, "sending",
                               printer="Bench-A")
        store.transition_build(printing.id, JobState.PRINT_SENT, "sent")
        waiting = [approve_build(store, held_build(store, tmp_path, f"C-{n}"), "olivia")
                   for n in range(10, 15)]
        for n in range(20, 23):
            held_build(store, tmp_path, f"C-{n}")  # with served's C-7: four held
        page = clients.get(served.url + "/printers", headers=AUTH).text
        card = re.search(r'<section class="card printer" data-printer="Bench-A">(.*?)</section>',
                         page, re.S)
        assert card is not None, page
        text = card.group(1)
        assert f'<a href="/builds/{printing.id}">C-1 {printing.job_key}</a>' in text
        shown = re.findall(r'<a href="/builds/(\d+)">', text.split('class="next"')[1])
        assert [int(i) for i in shown] == [b.id for b in waiting[:3]]
        assert '<a href="/?state=waiting" class="more">and 2 more waiting</a>' in text
        assert '<a href="/?state=approval">4 awaiting approval</a>' in text


class TestABuildAFullDiskStopped:
    """A build's page says which disk to free when a full disk stopped it, from the store's
    ``full_disk``: the reason quotes the refused write, which names a file, not a remedy."""

    @staticmethod
    def _failed(served: Served, tmp_path: Path, full_disk: Path | None) -> tuple[int, int]:
        """A case's build failed (for want of room when ``full_disk``): its id, its job's."""
        job = served.store.create_job(recipe="grey", source_path=tmp_path / "C-3.stl",
                                      content_hash="h1", case_id="C-3",
                                      state=JobState.PROCESSING)
        build = served.store.create_build(recipe="grey", job_ids=[job.id])
        served.store.transition_build(build.id, JobState.PREPARING, "on a server")
        served.store.transition_build(
            build.id, JobState.FAILED, "cannot save the .form: No space left on device",
            full_disk=full_disk)
        return build.id, job.id

    @staticmethod
    def _said(served: Served, build_id: int) -> str | None:
        page = clients.get(f"{served.url}/builds/{build_id}", headers=AUTH)
        assert page.status_code == 200
        found = re.search(r'<p class="error" id="full-disk">(.*?)</p>', page.text, re.S)
        return None if found is None else found.group(1)

    def test_its_page_names_the_folder_whose_disk_to_free_and_where_to_retry(
        self, served: Served, tmp_path: Path
    ) -> None:
        folder = tmp_path / "out & <day>"  # a folder's name is shown as text, not markup
        build_id, _ = self._failed(served, tmp_path, folder)
        said = self._said(served, build_id)
        assert said is not None
        assert html.unescape(re.sub(r"<[^>]+>", "", said)) == (
            f"Stopped by a full disk: free some space on the disk holding {folder}, then "
            "retry it on Failed cases.")
        assert said.endswith('<a href="/failed">Failed cases</a>.')

    def test_once_its_case_is_retried_the_page_asks_for_no_retry(
        self, served: Served, tmp_path: Path
    ) -> None:
        build_id, job_id = self._failed(served, tmp_path, tmp_path / "out")
        served.store.transition(job_id, JobState.QUEUED, "retried by user")
        assert self._said(served, build_id) == (
            f"Stopped by a full disk: free some space on the disk holding {tmp_path / 'out'}.")

    def test_a_build_failed_for_another_cause_names_no_disk(
        self, served: Served, tmp_path: Path
    ) -> None:
        build_id, _ = self._failed(served, tmp_path, None)
        assert self._said(served, build_id) is None

    def test_once_a_later_job_printed_its_file_the_page_asks_for_no_retry(
        self, served: Served, tmp_path: Path
    ) -> None:
        """Its failed case is superseded: Failed cases leaves it out and offers no Retry."""
        build_id, _ = self._failed(served, tmp_path, tmp_path / "out")
        ended_job(served.store, tmp_path, "C-4", JobState.DONE)  # the same recipe and file
        assert self._said(served, build_id) == (
            f"Stopped by a full disk: free some space on the disk holding {tmp_path / 'out'}.")
