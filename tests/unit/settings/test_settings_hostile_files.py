"""Hostile YAML (``tests/hostile_corpus.py``'s YAML corpus) read as settings files, recipes and
sidecars: each refused with its message class at its line, no traceback, in bounded time and
memory. A settings file is read by `run`, `watch` and `jobs` through ``load_settings`` and by
`validate --settings` through the recipe loader; both must say the same."""

from __future__ import annotations

import io
import re
import tempfile
import tracemalloc
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.errors import ConfigError, SidecarError
from preform_pipeline.hotfolder.sidecar import read_sidecar
from preform_pipeline.settings import load_settings
from tests.hostile_corpus import YamlEntry, write_yaml_corpus

#: Far more than reading a page of settings takes (about 1 MB); the alias bomb's values,
#: walked, took gigabytes.
MEMORY_BOUND = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, YamlEntry]]:
    folder = tmp_path_factory.mktemp("hostile-yaml")
    return folder, {entry.name: entry for entry in write_yaml_corpus(folder)}


def _names() -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        return [entry.name for entry in write_yaml_corpus(Path(folder))]


NAMES = _names()


def _placed(text: str, entry: YamlEntry) -> bool:
    """Whether ``text`` says ``entry``'s problem at its line, ``name:LINE:``, as recipe
    problems are written (and, since session 38, a sidecar's syntax errors too)."""
    if re.search(entry.expect, text) is None:
        return False
    return entry.line is None or f"{entry.name}:{entry.line}:" in text


class TestSettingsFiles:
    """``load_settings`` (what every command reads its settings with) refuses each one."""

    @pytest.mark.timeout(20)
    @pytest.mark.parametrize("name", NAMES)
    def test_each_is_refused_at_its_place_in_little_memory(
        self, corpus: tuple[Path, dict[str, YamlEntry]], name: str
    ) -> None:
        folder, entries = corpus
        tracemalloc.start()
        try:
            with pytest.raises(ConfigError) as caught:
                load_settings(folder / name, env={})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert _placed(str(caught.value), entries[name]), str(caught.value)
        assert peak < MEMORY_BOUND

    @pytest.mark.timeout(20)
    @pytest.mark.parametrize("name", NAMES)
    def test_a_command_and_validate_say_the_same(
        self, corpus: tuple[Path, dict[str, YamlEntry]], name: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        folder, entries = corpus
        places = []
        for argv in (["jobs", "--settings"], ["validate", "--settings"]):
            out, err = io.StringIO(), io.StringIO()
            assert cli.run([*argv, str(folder / name)], out, err) == 1
            text = out.getvalue() + err.getvalue()
            assert "unexpected failure" not in text and "Traceback" not in text
            assert _placed(text, entries[name]), text
            place = re.search(rf"{re.escape(name)}:(\d+:\d+): ", text)
            places.append(place and place.group(1))
        jobs, validate = places
        assert jobs == validate  # the same line and column
        assert list(tmp_path.iterdir()) == []  # nothing made for a refused settings file


    def test_a_key_given_twice_is_named_by_its_path(
        self, corpus: tuple[Path, dict[str, YamlEntry]]
    ) -> None:
        folder, _ = corpus
        with pytest.raises(ConfigError) as caught:
            load_settings(folder / "twice-inside.yaml", env={})
        assert ("twice-inside.yaml:3:3: $.servers.count: duplicate key 'count' (first given "
                "at line 2)") in str(caught.value)


class TestRecipes:
    """`validate` takes each one as a recipe and names the same problem at the same line."""

    @pytest.mark.timeout(20)
    @pytest.mark.parametrize("name", NAMES)
    def test_validate(self, corpus: tuple[Path, dict[str, YamlEntry]], name: str) -> None:
        folder, entries = corpus
        out, err = io.StringIO(), io.StringIO()
        assert cli.run(["validate", str(folder / name)], out, err) == 1
        text = out.getvalue() + err.getvalue()
        assert "unexpected failure" not in text
        assert _placed(text, entries[name]), text


class TestSidecars:
    """A hot folder's YAML sidecar is read by the same rules."""

    @pytest.mark.timeout(20)
    @pytest.mark.parametrize("name", NAMES)
    def test_read_sidecar(self, corpus: tuple[Path, dict[str, YamlEntry]], name: str) -> None:
        folder, entries = corpus
        with pytest.raises(SidecarError) as caught:
            read_sidecar(folder / name)
        assert _placed(str(caught.value), entries[name]), str(caught.value)
