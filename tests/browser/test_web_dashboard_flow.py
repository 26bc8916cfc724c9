"""The dashboard in a real browser, on a real daemon: cases dropped into a hot folder appear
live, a build held for approval is approved from its labelled screenshot and prints on the
simulated fleet, another is rejected and its case lands in failed/ with the reason, and a
forged cross-site POST is refused.

``watch --serve`` runs as a subprocess on simulated PreFormServers; headless Chromium (Debian's
package) drives the pages through Playwright. Pictures of every page are taken on the way;
with ``UPDATE_DOC_IMAGES=1`` they replace docs/images/web-*.png.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from preform_pipeline.hotfolder.testing import (
    fleet_jobs,
    tetra_stl_bytes,
    wait_for,
    write_hotfolder_settings,
    write_recipe,
)
from preform_pipeline.legend import MARK_COLOUR
from preform_pipeline.store import JobState, SqliteJobStore, extract_key
from tests.browser.conftest import TABLET

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC_IMAGES = REPO_ROOT / "docs" / "images"
WAIT_S = 60.0
OPERATOR_SECRET = "op-secret-for-the-browser-test"
VIEWER_SECRET = "viewer-secret-for-the-browser-test"
VIEWER_ENV = "DASHBOARD_TEST_VIEWER_SECRET"


@dataclass
class Lab:
    """A running ``watch --serve`` and its folders."""

    root: Path
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    json_log: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def fleet(self) -> Path:
        return self.root / "fleet"

    def store(self) -> SqliteJobStore:
        return SqliteJobStore(self.root / "jobs.sqlite3", create=False)

    def drop(self, name: str, case_id: str, seed: int) -> None:
        staging = self.root / "staging"
        staging.mkdir(exist_ok=True)
        (self.inbox / f"{name}.json").write_text(json.dumps({"case_id": case_id}),
                                                 encoding="utf-8")
        (staging / f"{name}.stl").write_bytes(tetra_stl_bytes(seed, size_mm=6.0))
        (staging / f"{name}.stl").rename(self.inbox / f"{name}.stl")

    def build_of(self, case_id: str) -> Any:
        with self.store() as store:
            jobs = [j for j in store.list_jobs() if j.case_id == case_id]
            if not jobs or jobs[-1].build_id is None:
                return None
            return store.get_build(jobs[-1].build_id)

    def held(self, case_id: str) -> bool:
        build = self.build_of(case_id)
        return build is not None and build.state is JobState.AWAITING_APPROVAL


def _settings(root: Path) -> Path:
    recipe = write_recipe(root, printer="SimulatedForm4-1", per_build=1,
                          extra_steps=["estimate", "save_form", "screenshot"], approval=True)
    path = write_hotfolder_settings(root, recipe, fleet_dir=root / "fleet",
                                    hotfolders={"batching": {"window_s": 0.3},
                                                "rescan_interval_s": 0.5})
    (root / "operator.secret").write_text(OPERATOR_SECRET + "\n", encoding="utf-8")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["dispatch"] = {"poll_interval_s": 0.2}
    data["logging"] = {"level": "DEBUG", "file": str(root / "daemon.jsonl")}
    data["web"] = {"port": 0, "refresh_s": 1, "users": [
        {"name": "olivia", "role": "operator", "secret_file": "operator.secret"},
        {"name": "victor", "role": "viewer", "secret_env": VIEWER_ENV},
    ]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    (root / "inbox").mkdir()
    settings = _settings(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFORM_PIPELINE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env[VIEWER_ENV] = VIEWER_SECRET
    # A module's fixture is set up before the autouse own_data_folder gives the test its data
    # folder, so without this the daemon recorded its servers in the real user's folder.
    env["XDG_DATA_HOME"] = env["LOCALAPPDATA"] = str(root / "data-home")
    log = root / "daemon.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "preform_pipeline", "watch", str(settings), "--serve",
             "--quiet"], cwd=root, env=env, stdout=out, stderr=out)
    try:
        found: dict[str, str] = {}

        def listening() -> bool:
            match = re.search(r"dashboard on (http://127\.0\.0\.1:\d+)",
                              log.read_text(encoding="utf-8", errors="replace"))
            if match:
                found["url"] = match.group(1)
            return bool(match) or process.poll() is not None

        wait_for(listening, WAIT_S, what="the dashboard to listen")
        assert "url" in found, log.read_text(encoding="utf-8", errors="replace")
        yield Lab(root, found["url"], process, log, root / "daemon.jsonl")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _picture(page: Any, name: str, tmp: Path) -> None:
    """A picture of the page for the docs (replaced only with UPDATE_DOC_IMAGES=1)."""
    shot = tmp / f"web-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("UPDATE_DOC_IMAGES") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOC_IMAGES / shot.name)


@contextmanager
def _opened(browser: Any, viewport: dict[str, int] | None = TABLET) -> Iterator[Any]:
    """A page in a context of its own, closed after; a loaded machine renders slowly, so
    every wait may take up to ``WAIT_S``."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(WAIT_S * 1000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _login(page: Any, url: str, name: str, secret: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=secret]", secret)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def _marked_pixels(png: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return int(np.all(pixels == np.array(MARK_COLOUR, dtype=np.uint8), axis=-1).sum())


class _ForgingSite:
    """Another origin on this host (another port) serving a page that posts to the dashboard."""

    def __init__(self, page_html: str) -> None:
        body = page_html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TestDashboardFlow:
    """An operator works a held build through the pages; a viewer only looks."""

    def test_cases_appear_a_held_build_is_approved_and_prints_another_is_rejected(
        self, lab: Lab, browser: Any, tmp_path: Path
    ) -> None:
        with _opened(browser) as page:
            _login(page, lab.url, "olivia", OPERATOR_SECRET)
            # Dropped while the queue is open: the rows appear without a reload.
            lab.drop("upper", "C-100", 1)
            lab.drop("lower", "C-200", 2)
            for case in ("C-100", "C-200"):
                page.wait_for_selector(f"#cases tr[data-case='{case}']",
                                       timeout=WAIT_S * 1000)
            wait_for(lambda: lab.held("C-100") and lab.held("C-200"), WAIT_S,
                     what="both builds held for approval")
            page.wait_for_function(
                "document.querySelectorAll('#builds .state-awaiting_approval').length === 2",
                timeout=WAIT_S * 1000)
            _picture(page, "queue", tmp_path)

            # The held build: its screenshot carries the pipeline's marks and legend.
            approved = lab.build_of("C-100")
            page.click(f"#builds tr[data-build='{approved.job_key}'] a")
            page.wait_for_selector("#screenshot")
            page.wait_for_function(
                "document.getElementById('screenshot').naturalWidth > 0")
            image = page.request.get(f"{lab.url}/builds/{approved.id}/screenshot")
            assert image.ok and _marked_pixels(image.body()) > 0
            assert "C-100" in page.inner_text("#members")
            # Held, it has not printed: its steps end where the run stopped, before print.
            assert page.inner_text("#steps-done").split(" → ")[-2:] == [
                "save_form", "screenshot"]
            _picture(page, "build", tmp_path)
            assert fleet_jobs(lab.fleet) == []  # nothing printed before the approval
            page.click("#approve")
            wait_for(lambda: any(extract_key(j["job_name"]) == approved.job_key
                                 for j in fleet_jobs(lab.fleet)), WAIT_S,
                     what="the approved build printed on the simulated fleet")
            page.goto(f"{lab.url}/builds/{approved.id}")
            page.wait_for_selector(".state-print_sent", timeout=WAIT_S * 1000)
            assert "approved by olivia (web)" in page.inner_text(".trail")
            assert page.inner_text("#steps-done").split(" → ")[-2:] == ["screenshot", "print"]

            # The other is rejected with a reason: its case lands in failed/ with it.
            rejected = lab.build_of("C-200")
            page.goto(f"{lab.url}/builds/{rejected.id}")
            page.fill("#reject-reason", "crown margin is cut by a support")
            page.click("#reject")
            note = lab.inbox / "failed" / "lower.stl.error.txt"
            wait_for(lambda: note.is_file() and (lab.inbox / "failed" / "lower.stl").is_file(),
                     WAIT_S, what="the rejected case in failed/")
            text = note.read_text(encoding="utf-8")
            assert "rejected by olivia (web): crown margin is cut by a support" in text
            assert f"approval of build {rejected.job_key}" in text
            assert not any(extract_key(j["job_name"]) == rejected.job_key
                           for j in fleet_jobs(lab.fleet))
            page.goto(f"{lab.url}/failed")
            assert "crown margin is cut by a support" in page.inner_text(
                "#failed tr[data-case='C-200']")
            _picture(page, "failed", tmp_path)
            page.goto(f"{lab.url}/printers")
            page.wait_for_selector(".printer")
            _picture(page, "printers", tmp_path)
            page.goto(f"{lab.url}/history")
            page.click("details[data-case='C-100'] summary")
            _picture(page, "history", tmp_path)

            # A page on another origin posts to the dashboard with the session's cookie (same
            # site, so SameSite lets it through) and even the right CSRF token: refused.
            page.goto(f"{lab.url}/failed")
            token = page.get_attribute("input[name=csrf]", "value")
            forger = _ForgingSite(
                f"<form id=f method=post action='{lab.url}/cases/retry'>"
                f"<input name=csrf value='{token}'><input name=target value='case:C-200'>"
                "</form><script>document.getElementById('f').submit()</script>")
            try:
                page.goto(forger.url)
                page.wait_for_url(f"{lab.url}/cases/retry")
                assert "refused" in page.inner_text("body")
            finally:
                forger.close()
            with lab.store() as store:
                assert {j.state for j in store.list_jobs() if j.case_id == "C-200"} == {
                    JobState.FAILED}

    def test_a_viewer_sees_the_pages_but_cannot_act(
        self, lab: Lab, browser: Any
    ) -> None:
        with _opened(browser) as page:
            _login(page, lab.url, "victor", VIEWER_SECRET)
            page.goto(f"{lab.url}/failed")
            assert page.locator("button[data-test^=retry]").count() == 0
            assert page.get_attribute("body", "data-refresh-ms") == "1000"
            token = page.get_attribute("meta[name=csrf-token]", "content")
            answer = page.request.post(f"{lab.url}/cases/retry",
                                       form={"target": "case:C-200", "csrf": token},
                                       headers={"Origin": lab.url})
            assert answer.status == 403
            with lab.store() as store:
                assert {j.state for j in store.list_jobs() if j.case_id == "C-200"} == {
                    JobState.FAILED}

    def test_the_login_page_is_not_refreshed_under_what_is_being_typed(
        self, lab: Lab, browser: Any
    ) -> None:
        # Live pages refresh every second here; a refresh of the login page swapped in an empty
        # form while the name and password were being typed, so the login never went through.
        with _opened(browser) as page:
            page.goto(f"{lab.url}/login")
            page.fill("input[name=name]", "victor")
            with pytest.raises(PlaywrightTimeoutError):
                page.wait_for_event("request", lambda r: r.headers.get("x-live") == "1",
                                    timeout=3_000)  # three refresh periods
            assert page.input_value("input[name=name]") == "victor"
            page.fill("input[name=secret]", VIEWER_SECRET)
            page.click("button[type=submit]")
            page.wait_for_url(f"{lab.url}/")
            # The queue, being live, is refreshed.
            page.wait_for_event("request", lambda r: r.headers.get("x-live") == "1")

    def test_metrics_and_health_show_the_daemons_pool_and_prints(
        self, lab: Lab, browser: Any
    ) -> None:
        context = browser.new_context()
        context.set_default_timeout(WAIT_S * 1000)
        try:
            metrics = context.request.get(
                f"{lab.url}/metrics",
                headers={"Authorization": f"Bearer victor:{VIEWER_SECRET}"})
            assert metrics.status == 200
            text = metrics.text()
            assert re.search(r"^preform_pipeline_prints_sent 1$", text, re.M)
            assert re.search(r'^preform_pipeline_cases\{state="failed"\} 1$', text, re.M)
            assert re.search(r'^preform_pipeline_pool_servers\{state="\w+"\} 1$', text, re.M)
            health = context.request.get(f"{lab.url}/healthz").json()
            assert health["status"] == "ok" and health["servers_up"] == 1
            assert context.request.get(
                f"{lab.url}/metrics", headers={"Authorization": "Bearer victor:wrong"}
            ).status == 401
        finally:
            context.close()

    def test_no_secret_reaches_the_daemons_logs(self, lab: Lab) -> None:
        text = lab.log.read_text(encoding="utf-8", errors="replace")
        structured = lab.json_log.read_text(encoding="utf-8", errors="replace")
        events = [json.loads(line) for line in structured.splitlines() if line.strip()]
        assert any(e.get("event") == "web_login" and e.get("user") == "olivia" for e in events)
        for secret in (OPERATOR_SECRET, VIEWER_SECRET):
            assert secret not in text and secret not in structured
        assert "pp_session=" not in structured


def _next_refresh(page: Any) -> None:
    """Wait for the live part's next swap (live.js marks the body after each)."""
    page.evaluate("delete document.body.dataset.refreshedAt")
    page.wait_for_function("document.body.dataset.refreshedAt !== undefined")


class TestThePageLeftOpen:
    """A page left open keeps refreshing without taking a keyboard user's place, an opened
    trail or a typed login away, and cannot be framed by another site."""

    def test_a_focused_button_and_an_opened_trail_survive_the_refresh(
        self, lab: Lab, browser: Any
    ) -> None:
        # The swap replaced every element: focus fell back to the page's start (Enter then did
        # nothing) and the History page's trails snapped shut each second.
        with _opened(browser) as page:
            _login(page, lab.url, "olivia", OPERATOR_SECRET)
            page.goto(f"{lab.url}/failed")
            page.focus("button[data-test='retry-C-200']")
            _next_refresh(page)
            assert page.evaluate("document.activeElement.dataset.test") == "retry-C-200"
            page.goto(f"{lab.url}/history")
            page.click("details[data-case='C-100'] summary")
            page.click("h1")  # the trail stays open after the focus has left it
            _next_refresh(page)
            assert page.locator("details[data-case='C-100']").get_attribute("open") == ""

    def test_an_ended_session_brings_the_login_page_not_a_form_that_is_wiped(
        self, lab: Lab, browser: Any
    ) -> None:
        # Sessions end with a restart; the next refresh answered with the login form, swapped
        # into the old page and swapped again every second, so nobody could log in from it.
        with _opened(browser) as page:
            _login(page, lab.url, "victor", VIEWER_SECRET)
            page.context.clear_cookies()  # what a restart does to every open page's session
            # The live refresh, sent without a cookie since session 44, asks the login page to
            # say the session ended (`again`): not a first visit's bare form.
            page.wait_for_url(f"{lab.url}/login?next=/&again=1", timeout=10_000)
            assert page.locator("#ended").is_visible()
            page.fill("input[name=name]", "victor")
            with pytest.raises(PlaywrightTimeoutError):
                page.wait_for_event("request", lambda r: r.headers.get("x-live") == "1",
                                    timeout=3_000)  # three refresh periods
            assert page.input_value("input[name=name]") == "victor"
            page.fill("input[name=secret]", VIEWER_SECRET)
            page.click("button[type=submit]")
            page.wait_for_url(f"{lab.url}/")

    def test_a_printer_gone_offline_is_shown_offline_not_left_out(
        self, lab: Lab, browser: Any
    ) -> None:
        # The Local API's can_print=true (what choosing a printer asks) leaves offline printers
        # out, and the Printers page showed the lab one printer fewer, without a word.
        fleet_file = lab.fleet / "printers.json"
        fleet = json.loads(fleet_file.read_text(encoding="utf-8"))
        for printer in fleet["printers"]:
            if printer["serial"] == "SimulatedForm4-2":
                printer.update(status="OFFLINE", ready_to_print_now=False)
        staged = fleet_file.with_suffix(".staged")
        staged.write_text(json.dumps(fleet), encoding="utf-8")
        staged.replace(fleet_file)  # the simulator reads the fleet folder at each request
        with _opened(browser) as page:
            _login(page, lab.url, "victor", VIEWER_SECRET)
            page.goto(f"{lab.url}/printers")
            card = page.locator(".printer[data-printer='SimulatedForm4-2']")
            assert card.count() == 1, page.inner_text("main")
            assert card.locator(".status").inner_text() == "offline"
            assert page.locator(
                ".printer[data-printer='SimulatedForm4-1'] .status").inner_text() == "ready"

    def test_a_page_on_another_port_cannot_frame_the_dashboard(
        self, lab: Lab, browser: Any
    ) -> None:
        # Same-site, so the session cookie reached the frame, and a click stolen under a decoy
        # was the dashboard's own same-origin POST.
        context = browser.new_context(viewport=TABLET)
        context.set_default_timeout(WAIT_S * 1000)
        page = context.new_page()
        forger = _ForgingSite(
            f"<iframe id=f src='{lab.url}/failed' width=900 height=600 "
            "onload=\"document.body.dataset.framed = '1'\"></iframe>")
        try:
            _login(page, lab.url, "olivia", OPERATOR_SECRET)
            page.goto(forger.url)
            page.wait_for_function("document.body.dataset.framed === '1'")
            frame = page.frame_locator("#f")
            assert frame.locator("button[data-test='retry-C-200']").count() == 0
            page.goto(f"{lab.url}/failed")  # the page itself, unframed, has it
            assert page.locator("button[data-test='retry-C-200']").count() == 1
        finally:
            forger.close()
            context.close()


def _retries(lab: Lab, case_id: str) -> int:
    """How many times the case's jobs were queued again by a person (the audit trail)."""
    with lab.store() as store:
        return sum(1 for j in store.list_jobs() if j.case_id == case_id
                   for t in store.history(j.id)
                   if t.to_state is JobState.QUEUED and t.reason.startswith("retried"))


class TestWhatAnActionDid:
    """After an action the page says what was done, and the live refresh leaves it there."""

    def test_a_retry_is_said_on_the_page_and_survives_the_refresh(
        self, lab: Lab, browser: Any
    ) -> None:
        # The page reloaded after Retry and said nothing: "1 job queued again" was only in
        # the daemon's log.
        with _opened(browser) as page:
            _login(page, lab.url, "olivia", OPERATOR_SECRET)
            page.goto(f"{lab.url}/failed")
            before = _retries(lab, "C-200")
            with page.expect_response(re.compile(r"/failed\?done=[\w-]+$")):
                page.click("button[data-test='retry-C-200']")
            # Back on the page, with the token that has this tab (not another) say it.
            page.locator("#done").wait_for()
            assert page.inner_text("#done") == "Case C-200 queued again (1 job)"
            assert page.get_attribute("#done", "role") == "status"
            # Said, the token leaves the address bar (a reload or a bookmark would carry it).
            assert page.url == f"{lab.url}/failed"
            _next_refresh(page)
            assert page.inner_text("#done") == "Case C-200 queued again (1 job)"
            page.reload()
            assert page.url == f"{lab.url}/failed"
            assert page.locator("#done").count() == 0  # said once
            # The reload asked for the page again, not the action: the case was retried once.
            assert _retries(lab, "C-200") == before + 1


class TestLongNames:
    """A long case id or file name never widens the queue past the window."""

    def test_a_long_case_id_is_cut_with_its_whole_id_in_the_title(
        self, lab: Lab, browser: Any
    ) -> None:
        # `white-space: nowrap` on the Case column let an unbroken id push the table 19 px
        # past a 1180 px tablet window.
        long_id = "C-" + "0123456789" * 8
        with _opened(browser) as page:
            _login(page, lab.url, "victor", VIEWER_SECRET)
            lab.drop("x" * 120, long_id, 3)
            cell = page.locator(f"#cases tr[data-case='{long_id}'] td[data-label='Case'] .clip")
            cell.wait_for()
            assert cell.get_attribute("title") == long_id
            assert page.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
