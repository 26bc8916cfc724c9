"""Templates are compiled once a process: a second dashboard renders its pages from the first
one's compiled code, each page still carrying its own dashboard's settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
import pytest

from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import SqliteJobStore
from preform_pipeline.web import WebServer
from preform_pipeline.web.compiled import CompiledOnce
from tests.unit.web import clients
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
    answer = clients.get(f"{url}/failed", headers=VIEWER_AUTH)
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


def _environment(folder: Path, cache: CompiledOnce, **options: Any) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), bytecode_cache=cache,
                              **options)


class TestTheSharedCache:
    """What one environment compiled is another's only where it would compile the same."""

    #: Constants are escaped, finalized and filtered when the template is compiled, and the
    #: syntax options decide what is text: each option changes the code, not only its input.
    TEMPLATE = '{{ "<b>" }}|{{ "x"|shout }}|{% if 1 %}\nline{% endif %}'

    @pytest.mark.parametrize(("option", "its_own"), [
        ({"autoescape": False}, "<b>|X|\nline"),
        ({"finalize": lambda value: f"[{value}]"}, "[&lt;b&gt;]|[X]|\nline"),
        ({"trim_blocks": True}, "&lt;b&gt;|X|line"),
        ({"shout": lambda text: f"{text}!"}, "&lt;b&gt;|x!|\nline"),
    ], ids=["autoescape", "finalize", "trim_blocks", "a-filter"])
    def test_an_environment_configured_otherwise_renders_its_own_code(
        self, tmp_path: Path, compiled: list[str], option: dict[str, Any], its_own: str
    ) -> None:
        (tmp_path / "page.html").write_text(self.TEMPLATE, encoding="utf-8")
        cache = CompiledOnce()
        first = _environment(tmp_path, cache, autoescape=True)
        first.filters["shout"] = str.upper
        assert first.get_template("page.html").render() == "&lt;b&gt;|X|\nline"
        options = {"autoescape": True, **option}
        shout = options.pop("shout", str.upper)
        other = _environment(tmp_path, cache, **options)
        other.filters["shout"] = shout
        assert other.get_template("page.html").render() == its_own
        # And one configured as the first shares its code.
        alike = _environment(tmp_path, cache, autoescape=True)
        alike.filters["shout"] = str.upper
        compiled.clear()
        assert alike.get_template("page.html").render() == "&lt;b&gt;|X|\nline"
        assert compiled == []

    def test_a_template_edited_on_disk_is_compiled_again(
        self, tmp_path: Path, compiled: list[str]
    ) -> None:
        page = tmp_path / "page.html"
        page.write_text("before {{ 1 }}", encoding="utf-8")
        cache = CompiledOnce()
        running = _environment(tmp_path, cache)
        assert running.get_template("page.html").render() == "before 1"
        page.write_text("after {{ 2 }}", encoding="utf-8")
        # An edit within the file system's time resolution would not be seen by Jinja's
        # reload check, with or without this cache: the edit is made a second later.
        later = page.stat().st_mtime + 1
        os.utime(page, (later, later))
        compiled.clear()
        assert running.get_template("page.html").render() == "after 2"  # auto_reload
        assert _environment(tmp_path, cache).get_template("page.html").render() == "after 2"
        assert compiled == ["page.html"]  # once, for both
