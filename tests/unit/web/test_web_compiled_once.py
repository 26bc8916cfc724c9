"""Templates are compiled once a process: a second dashboard renders its pages from the first
one's compiled code, each page still carrying its own dashboard's settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jinja2
import pytest

from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.web import WebServer
from tests.unit.web.conftest import VIEWER_AUTH


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the templates Jinja compiles from source while the test runs."""
    names: list[str] = []
    compile_source = jinja2.Environment.compile

    def counted(self: jinja2.Environment, source: str, name: str | None = None,
                *args: object, **kwargs: object) -> object:
        names.append(str(name))
        return compile_source(self, source, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    yield names


@contextmanager
def _dashboard(tmp: Path, users: tuple[WebUser, ...], refresh_s: float) -> Iterator[str]:
    """A dashboard refreshing its pages every ``refresh_s``: its URL."""
    with SqliteJobStore(tmp / f"jobs-{refresh_s}.sqlite3") as store:
        server = WebServer(store, WebSettings(port=0, refresh_s=refresh_s, users=users))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def _failed_page(url: str) -> str:
    # A loaded machine (load 30) answered past httpx's 5 s default once: not this test's point.
    answer = httpx.get(f"{url}/failed", headers=VIEWER_AUTH, timeout=30.0)
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


class TestASecondDashboard:
    """Another dashboard in the same process (a restart of serve's app, the tests' hundreds)."""

    def test_renders_without_compiling_again_and_with_its_own_settings(
        self, tmp_path: Path, users: tuple[WebUser, ...], compiled: list[str]
    ) -> None:
        # Both made before either renders: settings shared between them would show here.
        with _dashboard(tmp_path, users, 7) as first, _dashboard(tmp_path, users, 9) as second:
            first_page = _failed_page(first)
            compiled_by_first = len(compiled)
            second_page = _failed_page(second)
        # The first may find the page compiled already (an earlier test's dashboard): what
        # counts is that the second compiles nothing the first rendered.
        assert compiled[compiled_by_first:] == []
        assert 'data-refresh-ms="7000"' in first_page
        assert 'data-refresh-ms="9000"' in second_page
