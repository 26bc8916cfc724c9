"""The docs' examples work as written: what a newcomer copies from README.md and docs/*.md
(docs/testing.md, the test record, aside) is what the tool accepts (session 48).

Each fenced YAML block says what it is by the words after ``yaml`` in its opening fence
(GitHub colours a block by the first word alone, so a reader sees plain YAML):

- ```` ```yaml ````: a whole recipe or a whole settings file, told apart by the product's own
  rule (a mapping whose keys are all the settings' own is a settings file). A recipe is checked
  by ``validate``'s checks against the shipped catalogue and the default simulated fleet, as a
  newcomer's ``validate`` checks it; a settings file as ``validate --settings`` checks it.
- ```` ```yaml fragment ````: part of one, written with its top-level keys: a recipe's keys are
  put over :data:`MINIMAL_RECIPE`; a settings part is checked as a settings file.
- ```` ```yaml fragment=steps ````: items of a recipe's ``steps:`` list, put after the minimal
  recipe's first step (``auto_orient``).
- ```` ```yaml refused ````: meant to be refused. Saved as ``settings.yaml`` (or
  ``recipe.yaml``), every line ``validate`` prints of it must stand in the next fenced block:
  the output the doc shows.
- ```` ```yaml sidecar ````: a hot-folder sidecar; ```` ```yaml outcomes ````: a Dashboard
  simulator outcomes file; each read by the product's reader. ```` ```yaml other ````: another
  program's file (Prometheus's), read as YAML only: none of its top-level keys may be a
  settings file's or a recipe's.

A settings example is checked as if saved at the checkout's root (beside the shipped
``recipes/``), a recipe as if saved in ``recipes/`` (beside ``base/``, which it may extend).
A file an example names by an absolute path is on the user's machine (``/srv/...``,
``/etc/...``, ``//nas/...``) and an environment variable it names (``secret_env``) is set there:
their absence here is the one problem allowed. A second check makes those files (under a
temporary folder) and sets those variables: then there is no problem at all, so what an absent
file stopped the loading before is checked too.

Every option the docs show for a command (``preform-pipeline run ... --dry-run``, in a code
span or on a command line of a code block) must be one of that command's parser's.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from preform_pipeline import cli
from preform_pipeline.commands._printers import printers_of_settings
from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.commands.validate import format_text
from preform_pipeline.errors import Problem
from preform_pipeline.hotfolder.sidecar import read_sidecar
from preform_pipeline.recipes.report import ValidationReport
from preform_pipeline.recipes.schema import recipe_schema
from preform_pipeline.recipes.settings_check import validate_settings
from preform_pipeline.recipes.validate import _settings_keys, validate_recipe
from preform_pipeline.settings import load_settings
from preform_pipeline.settings.schema import settings_schema
from preform_pipeline.simulator import cli as simulator_cli
from preform_pipeline.simulator.cloud import cli as dashboard_cli
from preform_pipeline.simulator.cloud.outcomes import load_outcomes
from tests.conftest import RECIPES, REPO_ROOT
from tests.unit.recipes.recipe_cases import SLA_RECIPE

#: The least a whole recipe holds; a fragment's top-level keys replace its own.
MINIMAL_RECIPE = SLA_RECIPE

DOCS = [REPO_ROOT / "README.md", *sorted(
    path for path in (REPO_ROOT / "docs").glob("*.md") if path.name != "testing.md")]
KINDS = {"", "fragment", "fragment=steps", "refused", "sidecar", "outcomes", "other"}
_FENCE = re.compile(r"^(\s*)```(\S*)[ \t]*(.*?)\s*$")
_CLOSE = re.compile(r"^\s*```\s*$")
_ABSOLUTE = re.compile(r"(?<![\w:.])/{1,2}[\w.@-][^\s'\"#,\]}]*")
_UNSET_VARIABLE = re.compile(r"the environment variable (\w+) is not set")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a doc: its language, the words after it, and its text."""

    doc: Path
    line: int
    language: str
    kind: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO_ROOT)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc``, a block indented in a list taken out of its indent."""
    found: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, language, kind = opened.groups()
        body: list[str] = []
        j = i + 1
        while not _CLOSE.match(lines[j]):
            body.append(lines[j].removeprefix(indent))
            j += 1
        found.append(Block(doc, i + 1, language, kind, "\n".join(body) + "\n"))
        i = j + 1
    return found


ALL_BLOCKS = [block for doc in DOCS for block in blocks(doc)]
YAML_BLOCKS = [block for block in ALL_BLOCKS if block.language == "yaml"]


def _report(block: Block, text: str, folder: Path, name: str | None = None) -> ValidationReport:
    """``validate``'s report of ``text`` saved in ``folder``: a settings file as if at the
    checkout's root (beside ``recipes/``), a recipe as if in ``recipes/`` (beside ``base/``)."""
    is_settings = bool(_settings_keys(yaml.safe_load(text)))
    beside = ("recipes", RECIPES) if is_settings else ("base", RECIPES / "base")
    (folder / beside[0]).symlink_to(beside[1], target_is_directory=True)
    path = folder / (name or ("settings.yaml" if is_settings else "recipe.yaml"))
    path.write_text(text, encoding="utf-8")
    if is_settings:
        return validate_settings(path, display=path.name)
    # A newcomer's validate: nothing configured, so the default simulated fleet.
    printers = printers_of_settings(load_settings(None, env={}))
    return validate_recipe(path, display=path.name, printers=printers)


def _on_the_users_machine(problem: Problem, text: str) -> bool:
    """Whether ``problem`` only says a file or a variable the example names is not here."""
    unset = _UNSET_VARIABLE.search(problem.message)
    if unset is not None:
        return unset.group(1) in text
    absent = "not found" in problem.message or "No such file or directory" in problem.message
    return absent and any(path in problem.message for path in _ABSOLUTE.findall(text))


def _whole(block: Block) -> str:
    """The block as a whole file: a fragment inside the minimal recipe."""
    if block.kind == "fragment=steps":
        lines = MINIMAL_RECIPE.splitlines(keepends=True)
        first = lines.index("  - auto_orient\n") + 1
        return "".join(lines[:first]) + block.text + "".join(lines[first:])
    data = yaml.safe_load(block.text)
    if block.kind == "fragment" and not _settings_keys(data):
        return yaml.safe_dump({**yaml.safe_load(MINIMAL_RECIPE), **(data or {})},
                              sort_keys=False)
    return block.text


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: b.where)
class TestEveryYamlExample:
    """Each fenced YAML example of the user docs, checked as what its fence says it is."""

    def test_its_fence_says_a_kind_this_test_knows(self, block: Block) -> None:
        assert block.kind in KINDS, f"{block.where}: unknown kind {block.kind!r} ({KINDS})"

    def test_the_tool_takes_it_as_the_doc_says(self, block: Block, tmp_path: Path) -> None:
        if block.kind == "other":
            # Another program's file, not a part of ours marked so to pass unchecked (review
            # rv48: a settings or recipe example marked `other` was read as YAML only).
            data = yaml.safe_load(block.text)
            ours = {*settings_schema()["properties"], *recipe_schema()["properties"]}
            keys = set(data) if isinstance(data, dict) else set()
            assert not keys & ours, f"{block.where}: a file of ours ({sorted(keys & ours)})"
        elif block.kind == "sidecar":
            (tmp_path / "C-1042.yaml").write_text(block.text, encoding="utf-8")
            read_sidecar(tmp_path / "C-1042.yaml")
        elif block.kind == "outcomes":
            (tmp_path / "outcomes.yaml").write_text(block.text, encoding="utf-8")
            load_outcomes(tmp_path / "outcomes.yaml")
        elif block.kind == "refused":
            report = _report(block, block.text, tmp_path)
            shown = ALL_BLOCKS[ALL_BLOCKS.index(block) + 1].text.splitlines()
            assert not report.valid, f"{block.where}: is taken, but the doc shows it refused"
            missing = [line for line in format_text(report) if line not in shown]
            assert missing == [], f"{block.where}: the doc does not show what validate says"
        elif block.kind in ("", "fragment", "fragment=steps"):
            text = _whole(block)
            report = _report(block, text, tmp_path)
            problems = [str(p) for p in report.problems
                        if not _on_the_users_machine(p, block.text)]
            assert problems == [], f"{block.where}: refused as the doc shows it"


@pytest.mark.parametrize("block", [b for b in YAML_BLOCKS
                                   if b.kind in ("", "fragment", "fragment=steps")],
                         ids=lambda b: b.where)
def test_it_is_taken_with_the_users_files_and_variables_there(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the files it names by absolute paths made (under ``tmp_path``) and the variables
    it names set, an example has no problem at all: an excused absent file stopped the
    loading, and nothing after it was checked (review rv48: web.md's users past
    ``wall-tablet``'s ``/etc/...`` file)."""
    machine = tmp_path / "machine"

    def made(found: re.Match[str]) -> str:
        local = machine / found.group(0).lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("a-secret-of-twenty-characters\n", encoding="utf-8")
        return local.as_posix()

    text = _ABSOLUTE.sub(made, _whole(block))
    for name in re.findall(r"secret_env:\s*(\w+)", text):
        monkeypatch.setenv(name, "a-secret-of-twenty-characters")
    (tmp_path / "here").mkdir()
    report = _report(block, text, tmp_path / "here")
    assert [str(p) for p in report.problems] == [], f"{block.where}: past the absent files"


def _mentions(doc: Path) -> Iterator[tuple[str, list[str]]]:
    """Each ``preform-pipeline COMMAND ...`` a doc shows, with the words after the name: in
    code spans (a span wrapped over lines read as one; one that starts with a command's name,
    ``run --dry-run``, too) and on the lines of code blocks that hold commands (no language,
    ``sh``, ``console``; a line ending in ``\\`` continued)."""
    text = doc.read_text(encoding="utf-8")
    shell = "\n".join(b.text for b in blocks(doc) if b.language in ("", "sh", "console"))
    shell = re.sub(r"\\\n\s*", " ", shell)  # a command continued on the next line
    outside = re.sub(r"^\s*```.*?^\s*```\s*$", "", text, flags=re.S | re.M)
    spans = [span.replace("\n", " ") for _, span in re.findall(r"(`+)(.+?)\1", outside, re.S)]
    # A span that starts with a command's name shows it too (`run --dry-run`).
    spans += [f"preform-pipeline {span}" for span in spans
              if span.split() and span.split()[0] in COMMANDS]
    for candidate in [*spans, *shell.splitlines()]:
        for found in re.finditer(r"(?:^|[\s/(])preform-pipeline\s+(\S.*)", candidate):
            words: list[str] = []
            for word in found.group(1).split():
                if word in (";", "&&", "||", "|", ">", "<", "2>&1") or word.startswith("#"):
                    break
                words.append(word)
            if words and words[0] in COMMANDS:
                yield candidate.strip(), words


def _options(words: list[str]) -> tuple[tuple[str, ...], set[str]]:
    """The (sub-)command ``words`` reach, and every option of the parsers on the way."""
    parser: argparse.ArgumentParser = cli._parser(words)
    reached: list[str] = []
    options: set[str] = set()
    for word in ["", *words]:
        options |= {o for action in parser._actions for o in action.option_strings}
        children = {name: child for action in parser._actions
                    if isinstance(action, argparse._SubParsersAction)
                    for name, child in action.choices.items()}
        # `jobs show|retry|cancel ID`: the first of the choices shown.
        chosen = next((w for w in word.split("|") if w in children), None)
        if chosen is not None:
            parser = children[chosen]
            reached.append(chosen)
    options |= {o for action in parser._actions for o in action.option_strings}
    return tuple(reached), options


MENTIONS = [(doc, line, words) for doc in DOCS for line, words in _mentions(doc)]


def test_the_docs_show_commands_at_all() -> None:
    # An extraction that finds nothing would pass every option below.
    assert len(MENTIONS) > 150 and len(YAML_BLOCKS) > 25


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_option_shown_for_a_command_is_one_of_its_parser(doc: Path) -> None:
    unknown: list[str] = []
    for shown_in, line, words in MENTIONS:
        if shown_in != doc:
            continue
        reached, options = _options(words)
        for word in words:
            option = re.match(r"^[\[(]*(--[A-Za-z][\w-]*)", word)
            if option is not None and option.group(1) not in options:
                unknown.append(f"{' '.join(reached)} {option.group(1)}  (in: {line})")
    assert unknown == []


#: The simulators' flag tables, and the parser of the program each describes.
FLAG_TABLES = {"simulator.md": simulator_cli.build_parser,
               "dashboard-simulator.md": dashboard_cli.build_parser}


@pytest.mark.parametrize("name", sorted(FLAG_TABLES))
def test_a_simulators_flag_table_lists_its_flags_and_no_other(name: str) -> None:
    text = (REPO_ROOT / "docs" / name).read_text(encoding="utf-8")
    # The first cell of each table row that names flags: `--port N`, `--log-file PATH`, ...
    cells = re.findall(r"^\| (`--.*?) \|", text, re.M)
    listed = {flag for cell in cells for flag in re.findall(r"`(--[a-z][\w-]*)", cell)}
    parser = FLAG_TABLES[name]()
    flags = {o for action in parser._actions for o in action.option_strings
             if o.startswith("--") and o != "--help"}
    assert (sorted(listed - flags), sorted(flags - listed)) == ([], [])
