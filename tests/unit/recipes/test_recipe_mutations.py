"""Property: a mutated example recipe validates, or its problems point at the mutated line."""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preform_pipeline.recipes.schema import recipe_schema
from preform_pipeline.recipes.validate import validate_recipe
from preform_pipeline.yamlerrors import format_json_path
from tests.conftest import RECIPES

EXAMPLES = sorted(p.relative_to(RECIPES).as_posix() for p in RECIPES.rglob("*.yaml"))
WRONG_TYPE = "[1, 2]"
OUT_OF_RANGE = "-1000000"

Kind = Literal["wrong_type", "out_of_range", "misspell_key"]


@dataclass(frozen=True)
class Site:
    """A piece of recipe text that a mutation may replace."""

    path: tuple[str | int, ...]
    start: int
    end: int
    line: int
    text: str
    numeric: bool = False
    is_key: bool = False


def _schema_names() -> set[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dict(recipe_schema()))
    return names


SCHEMA_NAMES = _schema_names()


@functools.cache
def _sites(relative: str) -> tuple[list[Site], list[Site]]:
    """(value sites, key sites) of one example file, with exact character spans."""
    text = (RECIPES / relative).read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    values: list[Site] = []
    keys: list[Site] = []

    def scalar_site(node: Any, path: tuple[str | int, ...], is_key: bool = False) -> None:
        if node.style not in (None, "'", '"') or node.start_mark.index == node.end_mark.index:
            return  # block scalars span lines; empty values have no text to replace
        numeric = node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        site = Site(path, node.start_mark.index, node.end_mark.index, node.start_mark.line + 1,
                    node.value, numeric, is_key)
        (keys if is_key else values).append(site)

    def walk(node: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, (*path, key.value))
                if key.style is None:
                    scalar_site(key, (*path, key.value), is_key=True)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))
        else:
            scalar_site(node, path)

    walk(root, ())
    return values, keys


def _misspell(word: str, choice: int) -> str:
    """A deterministic misspelling that is no key the schema knows."""
    options = [word[:-1] + "x" + word[-1:], word[1:] + "q", word + "_x", "x" + word]
    if len(word) > 3:
        options.insert(0, word[:1] + word[2] + word[1] + word[3:])  # swap two letters
    for candidate in options[choice % len(options):] + options:
        if candidate not in SCHEMA_NAMES and candidate != word:
            return candidate
    raise AssertionError(f"no misspelling for {word!r}")


@pytest.fixture(scope="module")
def recipes_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of recipes/, so mutants sit beside the files they extend."""
    target = tmp_path_factory.mktemp("recipes")
    shutil.copytree(RECIPES, target, dirs_exist_ok=True)
    return target


class TestMutatedRecipes:
    """Random mutations of the examples are caught, and reported at the line that changed."""

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[*settings().suppress_health_check,
                               HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    def test_problems_point_at_the_mutated_line(self, recipes_copy: Path, data: Any) -> None:
        relative = data.draw(st.sampled_from(EXAMPLES), label="recipe")
        kind: Kind = data.draw(
            st.sampled_from(["wrong_type", "out_of_range", "misspell_key"]), label="mutation"
        )
        values, keys = _sites(relative)
        numeric = [s for s in values if s.numeric]
        pool = {"wrong_type": values, "out_of_range": numeric, "misspell_key": keys}[kind]
        site = data.draw(st.sampled_from(pool), label="site")
        path = site.path
        if kind == "wrong_type":
            replacement = WRONG_TYPE
        elif kind == "out_of_range":
            replacement = OUT_OF_RANGE
        else:
            replacement = _misspell(site.text, data.draw(st.integers(0, 7), label="spelling"))
            path = (*site.path[:-1], replacement)

        original = (RECIPES / relative).read_text(encoding="utf-8")
        mutant = original[: site.start] + replacement + original[site.end :]
        folder = (recipes_copy / relative).parent
        mutant_path = folder / "_mutant.yaml"
        mutant_path.write_text(mutant, encoding="utf-8")
        display = (Path(relative).parent / "_mutant.yaml").as_posix()

        report = validate_recipe(mutant_path, display=display)

        for problem in report.problems:
            assert problem.line is not None, str(problem)
            file = mutant if problem.file == display else (
                recipes_copy / problem.file).read_text(encoding="utf-8")
            assert 1 <= problem.line <= len(file.splitlines()), str(problem)
        at_site = [p for p in report.problems
                   if p.file == display and p.json_path == format_json_path(path)]
        for problem in at_site:
            assert problem.line == site.line, str(problem)
        if kind in ("wrong_type", "misspell_key"):
            # Nothing in a recipe accepts a list where a scalar was, nor an unknown key.
            listing = "\n".join(str(p) for p in report.problems)
            assert at_site, f"no problem at {format_json_path(path)}:\n{listing}"
