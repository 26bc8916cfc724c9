"""Fixtures of the dashboard tests: a real SQLite store with a held build, and the dashboard
served by uvicorn on 127.0.0.1 (a free port) with an operator and a viewer."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from preform_pipeline.hotfolder.intake import HOTFOLDER_FIELD, JobPlace
from preform_pipeline.printing.approval import hold_for_approval
from preform_pipeline.servers import ServerState, ServerStatus
from preform_pipeline.settings.web import WebSettings, WebUser, hash_secret
from preform_pipeline.store import Job, JobState, JobStore, SqliteJobStore
from preform_pipeline.web import WebServer
from preform_pipeline.web.views import QueueFilter
from tests.build_steps import printing_steps
from tests.unit.web import clients

OPERATOR_SECRET = "operator-secret-0123"
VIEWER_SECRET = "viewer-secret-4567"
#: A script's request as the viewer.
VIEWER_AUTH = {"Authorization": f"Bearer victor:{VIEWER_SECRET}"}
TARGET = {"names": ["Bench-A"], "auto": False, "machine_type": "FORM-4-0",
          "material": "FLGPGR05"}


@dataclass
class Served:
    """A running dashboard, its store, and a build held for approval on it."""

    url: str
    store: JobStore
    held_id: int
    case_id: str


def held_build(store: JobStore, tmp: Path, case_id: str) -> int:
    job = store.create_job(recipe="crowns", source_path=tmp / f"{case_id}.stl",
                           case_id=case_id, state=JobState.PROCESSING)
    build = store.create_build(recipe="crowns", job_ids=[job.id])
    store.transition_build(build.id, JobState.PREPARING, "on a server")
    store.transition_build(build.id, JobState.PREPARED, "prepared",
                           form_path=tmp / f"{build.job_key}.form")
    hold_for_approval(store, build.id, TARGET, job_name=f"{case_id} {build.job_key}",
                      priority=0, describe="Bench-A")
    return build.id


def server_status(name: str, *, remote: bool, restarts: int = 0, rechecks: int = 0,
                  builds: int = 0, state: ServerState = ServerState.IDLE,
                  retired_reason: str | None = None) -> ServerStatus:
    """One server of a pool as ``pool.status()`` gives it."""
    return ServerStatus(name=name, state=state, url="http://127.0.0.1:9",
                        port=9, pid=None, remote=remote, builds=builds, total_builds=builds,
                        restarts=restarts, generation=restarts + 1,
                        retired_reason=retired_reason, last_error=None, rechecks=rechecks)


@dataclass(frozen=True)
class Statuses:
    """A pool as the dashboard reads it: its servers' statuses (the ServerSource seam)."""

    servers: tuple[ServerStatus, ...]

    def status(self) -> tuple[ServerStatus, ...]:
        return self.servers


@pytest.fixture(scope="module")
def users() -> tuple[WebUser, ...]:
    return (WebUser("olivia", "operator", hash_secret(OPERATOR_SECRET)),
            WebUser("victor", "viewer", hash_secret(VIEWER_SECRET)))


@contextmanager
def serving(store: JobStore, tmp: Path, users: tuple[WebUser, ...]) -> Iterator[Served]:
    """The dashboard on ``store``, with case C-7's build held for approval; stopped after."""
    held = held_build(store, tmp, "C-7")
    server = WebServer(store, WebSettings(port=0, users=users))
    server.start()
    try:
        yield Served(server.url, store, held, "C-7")
    finally:
        server.stop()


@pytest.fixture
def served(tmp_path: Path, users: tuple[WebUser, ...]) -> Iterator[Served]:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    try:
        with serving(store, tmp_path, users) as served:
            yield served
    finally:
        store.close()


def logged_in(served: Served, name: str, secret: str) -> tuple[httpx.Client, str]:
    """A client logged in through the login form, and the CSRF token its pages carry."""
    client = clients.Client(base_url=served.url, follow_redirects=False)
    answer = client.post("/login", data={"name": name, "secret": secret, "next": "/"})
    assert answer.status_code == 303, answer.text
    page = client.get(f"/builds/{served.held_id}")
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    return client, found.group(1) if found else ""


@dataclass(frozen=True)
class Refused:
    """A browser session's refused action: where it sent the browser, and that page."""

    location: str
    page: str
    #: The refusal's own lines (the section above the page's live part), as text, a line
    #: each.
    said: str


def refused(client: httpx.Client, answer: httpx.Response) -> Refused:
    """Follow a session's refused action (POST/redirect/GET, web/told.py) to the page it
    returns to, which says why once; fails if the action was not redirected, or its page
    does not say it was refused."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:500])
    location = answer.headers["location"]
    page = client.get(location)
    assert page.status_code in (200, 404), page.status_code
    found = re.search(r'<section class="refused" role="alert" id="refused">(.*?)</section>',
                      page.text, re.S)
    assert found is not None, page.text[:2000]
    lines = re.sub(r"<[^>]+>", "", found.group(1).replace("</p>", "\n"))
    return Refused(location, page.text, html.unescape(lines).strip())


def ended_job(store: JobStore, tmp: Path, case_id: str, state: JobState, *,
              digest: str = "h1") -> Job:
    """A job of recipe ``grey`` and content ``digest`` that ended in ``state`` (FAILED, as a
    killed run leaves it, or DONE: prepared by a recipe without a print step, or FINISHED),
    or whose print is sent (PRINT_SENT) or printing (VERIFYING)."""
    job = store.create_job(recipe="grey", source_path=tmp / f"{case_id}.stl",
                           content_hash=digest, case_id=case_id, state=JobState.PROCESSING)
    if state is JobState.FAILED:
        return store.transition(job.id, JobState.FAILED, "its run died before printing it")
    build = store.create_build(recipe="grey", job_ids=[job.id])
    for step in (JobState.PREPARING, JobState.PREPARED, *printing_steps(state), state):
        store.transition_build(build.id, step, "test")
    return store.get_job(job.id)


def failed_print(store: JobStore, tmp: Path, case_id: str) -> Job:
    """A job whose print the printer reported failed (``print_error``), as verify records it."""
    job = ended_job(store, tmp, case_id, JobState.PRINT_SENT)
    assert job.build_id is not None
    store.transition_build(job.build_id, JobState.PRINT_ERROR, "print ERROR: Resin tank leak")
    return store.get_job(job.id)


def listed_cases(page: str) -> list[str]:
    """The cases of a page's table (the queue, Failed cases), in its order."""
    return re.findall(r'<tr data-case="([^"]*)"', page)


def followed(link: str) -> QueueFilter:
    """The filter of a History link (its query string), as the dashboard reads it."""
    return QueueFilter.parse(dict(parse_qsl(link)), default="all")


def taken_job(store: JobStore, tmp: Path, case_id: str, *, inbox_here: bool = True,
              name: str = "upper.stl", there: bool = False) -> Job:
    """A job the hot folder took from ``hot/inbox/<case>/<name>`` and failed into
    ``hot/failed/``; the file is not there (``there``: it is). ``inbox_here``: this machine
    sees the inbox."""
    hot = tmp / "hot"
    if inbox_here:
        (hot / "inbox").mkdir(parents=True, exist_ok=True)
    place = JobPlace(hot / "inbox", f"{case_id}/{name}",
                     previous=hot / "processing" / name, moved=True)
    source = hot / "failed" / case_id / name
    if there:
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(b"solid x\nendsolid x\n")
    job = store.create_job(recipe="grey", source_path=source, case_id=case_id,
                           state=JobState.QUEUED, fields={HOTFOLDER_FIELD: place.to_json()})
    return store.transition(job.id, JobState.FAILED, "could not be read")
