"""The import layers of docs/architecture.md, checked over the source of every module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "preform_pipeline"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: Layers, lowest first: a part imports only from its own layer or below.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"", "errors", "clock", "settings", "logging", "catalogue", "backoff", "retryafter",
               "interrupts", "crash", "preflight", "yamlerrors",
               "liveness", "wording", "atomicfile", "textfiles", "lazyexports", "heldfile",
               "thirdparty", "userpath", "diskspace", "answers", "extras",
               "serverlines", "secretargs", "outputfolders", "urlauth", "transportwords"}),
    # legend draws numbered marks and a legend strip onto a screenshot: image work only.
    frozenset({"geometry", "recipes", "api", "cloud", "store", "legend"}),
    frozenset({"plan", "servers", "printing"}),
    frozenset({"executor", "dispatch", "verify", "notify"}),
    frozenset({"hotfolder", "report", "retention"}),
    frozenset({"web", "commands", "cli", "__main__", "simulator"}),
)

#: The simulator is a program of its own that stands in for PreFormServer and the Dashboard:
#: besides the shared base it may read model files and the public models of api/ and cloud/,
#: never the planner or anything else of the pipeline.
SIMULATOR_MAY_IMPORT = frozenset(
    {"", "errors", "clock", "logging", "catalogue", "interrupts", "geometry", "api", "cloud",
     "simulator", "wording",
     # A fleet folder's members are records held for their life, judged by the one rule.
     "heldfile", "liveness",
     # Its --drive folders are user paths, refused by the one rule when ~name has no home.
     "userpath",
     # The lines PreFormServer prints (ready, port taken): what it models, written once.
     "serverlines",
     # A secret typed on its command line is refused by the one rule, the value not repeated.
     "secretargs"}
)

#: Settings are a leaf: plain values and their readers, built from the file, the environment and
#: the schema; nothing of the pipeline besides the errors and the base helpers they report with.
SETTINGS_MAY_IMPORT = frozenset({"", "errors", "logging", "yamlerrors", "textfiles",
                                 "settings", "userpath"})

#: Today's known violations, as exact (importing module, imported module) pairs. This list may
#: only shrink: a pair not on it fails the test, and so does a listed pair that no longer
#: occurs (delete it here when its import goes). It must end empty.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset(
    {
    }
)

#: Modules that the lowest layer must not drag in when imported: clients, stores, servers.
HEAVY_PREFIXES = tuple(
    f"{PACKAGE}.{part}" for part in ("api", "cloud", "store", "servers", "simulator", "web")
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, name: str, *, is_package: bool = False) -> Iterator[str]:
    """Every module the source of module ``name`` imports, at module level or in a function
    (``from a import b`` yields ``a`` and ``a.b``: b may be a module)."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        for target in imported_modules(source, name, is_package=path.name == "__init__.py"):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def part_of(module: str) -> str:
    """The top-level part of the package a module belongs to ("" for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"{PACKAGE}.{part} is in no layer: add it to LAYERS and the docs")


def violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Upward imports and imports the simulator may not make, as module pairs."""
    found: set[tuple[str, str]] = set()
    for source, targets in graph.items():
        here = part_of(source)
        for target in targets:
            there = part_of(target)
            outside = (here == "simulator" and there not in SIMULATOR_MAY_IMPORT) or (
                here == "settings" and there not in SETTINGS_MAY_IMPORT
            )
            if outside or layer_of(there) > layer_of(here):
                found.add((source, target))
    return found


def part_cycles(graph: dict[str, set[str]], ignored: frozenset[tuple[str, str]]) -> list[str]:
    """Cycles between top-level parts (each reported once, as its parts)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            if part_of(source) != part_of(target) and (source, target) not in ignored:
                edges[part_of(source)].add(part_of(target))
    cycles: set[str] = set()

    def walk(part: str, path: list[str]) -> None:
        for follower in sorted(edges[part]):
            if follower in path:
                loop = path[path.index(follower) :]
                start = loop.index(min(loop))
                cycles.add(" -> ".join(loop[start:] + loop[:start] + [min(loop)]))
            else:
                walk(follower, [*path, follower])

    for part in sorted(edges):
        walk(part, [part])
    return sorted(cycles)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


class TestImportLayers:
    """No module imports upward, the simulator stays independent, and parts form no cycle."""

    def test_every_part_of_the_package_has_a_layer(self, graph: dict[str, set[str]]) -> None:
        for module in graph:
            layer_of(part_of(module))

    def test_no_import_goes_upward_beyond_the_known_list(
        self, graph: dict[str, set[str]]
    ) -> None:
        new = sorted(violations(graph) - KNOWN_VIOLATIONS)
        assert not new, "imports against the layers of docs/architecture.md:\n" + "\n".join(
            f"  {source} -> {target}" for source, target in new
        )

    def test_every_known_violation_still_occurs(self, graph: dict[str, set[str]]) -> None:
        edges = {(source, target) for source, targets in graph.items() for target in targets}
        gone = sorted(KNOWN_VIOLATIONS - edges)
        assert not gone, "fixed: remove these from KNOWN_VIOLATIONS:\n" + "\n".join(
            f"  {source} -> {target}" for source, target in gone
        )

    def test_no_two_parts_import_each_other(self, graph: dict[str, set[str]]) -> None:
        assert part_cycles(graph, KNOWN_VIOLATIONS) == []

    def test_a_function_level_import_counts_too(self) -> None:
        source = "def f():\n    from preform_pipeline.report import write_build_report\n"
        found = set(imported_modules(source, "preform_pipeline.executor.runner"))
        assert "preform_pipeline.report" in found

    def test_a_relative_import_is_read_as_the_module_it_names(self) -> None:
        source = "from ..recipes.model import DEFAULT_SPACING_MM\nfrom . import graph\n"
        found = set(imported_modules(source, "preform_pipeline.plan.packing"))
        assert {"preform_pipeline.recipes.model", "preform_pipeline.plan.graph"} <= found

    def test_a_cycle_between_parts_is_found(self) -> None:
        looped = {
            "preform_pipeline.cloud.testing": {"preform_pipeline.simulator.cloud.records"},
            "preform_pipeline.simulator.cloud.server": {"preform_pipeline.cloud.models"},
        }
        assert part_cycles(looped, frozenset()) == ["cloud -> simulator -> cloud"]

    def test_an_upward_import_is_found(self) -> None:
        upward = {"preform_pipeline.executor.runner": {"preform_pipeline.report"}}
        assert violations(upward) == {
            ("preform_pipeline.executor.runner", "preform_pipeline.report")
        }

    def test_settings_may_not_import_another_base_module(self) -> None:
        clocked = {"preform_pipeline.settings.servers": {"preform_pipeline.clock"}}
        assert violations(clocked) == {
            ("preform_pipeline.settings.servers", "preform_pipeline.clock")
        }

    def test_the_simulator_may_not_import_the_planner(self) -> None:
        planner = {"preform_pipeline.simulator.engine": {"preform_pipeline.plan.graph"}}
        assert violations(planner) == {
            ("preform_pipeline.simulator.engine", "preform_pipeline.plan.graph")
        }


class TestLightBase:
    """Importing the base layer loads no client, store or server module."""

    @pytest.mark.parametrize(
        "module", [f"{PACKAGE}.clock", f"{PACKAGE}.errors", f"{PACKAGE}.settings"]
    )
    def test_the_module_loads_nothing_heavy(self, module: str) -> None:
        code = (
            "import importlib, json, sys\n"
            f"importlib.import_module({module!r})\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        loaded = json.loads(out)
        assert module in loaded
        assert [m for m in loaded if m.startswith(HEAVY_PREFIXES)] == []
        assert "httpx" not in loaded and "sqlite3" not in loaded
