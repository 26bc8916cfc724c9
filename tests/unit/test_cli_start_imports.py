"""A command's start imports what its own path needs, not every command's stack.

Hundreds of command lines start in the suite and in a user's day; each paid ~0.3-0.6 s of CPU
for modules it never used (every command module, numpy, httpx, the dashboard's Starlette).
Each command line runs in a real interpreter of its own that had imported the CLI alone, and
lists what it imported.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from preform_pipeline.cli import COMMAND_MODULES
from preform_pipeline.commands.arguments import COMMANDS
from preform_pipeline.simulator.cli import EXIT_INJECTED_FAULT, EXIT_OK, EXIT_USAGE
from preform_pipeline.simulator.cloud.testing import start_dashboard
from preform_pipeline.simulator.testing import start_simulator
from preform_pipeline.store import SqliteJobStore
from tests.conftest import RECIPES, REPO_ROOT, SAMPLE_MODELS

TIMEOUT_S = 60.0
#: A scene and a model for a simulator's first model import.
SCENE = {"machine_type": "FORM-4-0", "material_code": "FLGPGR05", "layer_thickness_mm": 0.1,
         "print_setting": "DEFAULT"}
MODEL = SAMPLE_MODELS / "parts" / "l_bracket.stl"

#: Runs each command line given (one JSON list an argument) through the CLI's own run(), in a
#: child forked for it from an interpreter that had imported only what a fresh
#: ``python -c "from preform_pipeline.cli import run; ..."`` imports before its run(): the
#: child starts with exactly that interpreter's modules, as a fresh one would, and the lines
#: share one interpreter's start (~0.3 s of CPU each when each had its own, 18 of them). One
#: line a child: the command line, its status and the modules it ended with; a child that
#: crashed, its line with no status and its traceback instead.
#:
#: A fork copies the calling thread alone: a lock another thread held (the import lock, a
#: logging handler's) would stay held in every child. The interpreter forks only while it has
#: one thread (``/proc/self/task``, which counts threads no Python module started too, and
#: reads with ``os`` alone, so no module is added), and says so otherwise (review
#: rv46-suiteunita: nothing checked it).
CHILDREN = """
import io, json, os, sys
from preform_pipeline.cli import run
threads = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["?"]
if len(threads) != 1:
    sys.exit(f"not forking: the interpreter that imported the CLI runs {len(threads)} threads")
for line in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            status = run(json.loads(line), io.StringIO(), io.StringIO())
            print(json.dumps([line, status, sorted(sys.modules)]), flush=True)
            code = 0
        except BaseException:
            import traceback
            print(json.dumps([line, None, traceback.format_exc()]), flush=True)
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
"""

#: Every command module but the one named.
def _other_commands(name: str) -> tuple[str, ...]:
    return tuple(module for module in COMMAND_MODULES if not module.endswith(f".{name}"))


def _missing(command: str, home: Path) -> list[str]:
    """``command`` naming files that are not there in ``home``: it runs, then refuses them."""
    return [command, str(home / "missing.yaml")] + ([str(home / "missing.stl")]
                                                    if command == "run" else [])


def _empty_inbox_run(home: Path) -> list[str]:
    """A cron ``run`` over an inbox with nothing in it, recording in a store of its own."""
    return ["run", str(RECIPES / "engineering-grey-form4.yaml"), str(home / "inbox"),
            "--store", str(home / "run.sqlite3"), "--output", str(home / "run-output")]


def _lines(home: Path) -> list[list[str]]:
    """Every command line the cases below ask about, with ``home`` as the home folder."""
    return [
        ["validate", str(RECIPES / "engineering-grey-form4.yaml")],
        ["jobs", "--store", str(home / "jobs.sqlite3")],
        ["verify", "--store", str(home / "jobs.sqlite3")],
        _missing("run", home),
        _missing("watch", home),
        ["watch", "--once", str(home / "watch.yaml")],
        _empty_inbox_run(home),
        ["--version"], ["--help"], ["no-such-command"],
        *([command, "--help"] for command in COMMANDS),
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The home folder of the command lines, holding the job store ``jobs`` lists and the
    settings of one empty inbox (``watch.yaml``)."""
    folder = tmp_path_factory.mktemp("home")
    with SqliteJobStore(folder / "jobs.sqlite3"):
        pass
    (folder / "inbox").mkdir()
    (folder / "watch.yaml").write_text(json.dumps({  # JSON is YAML
        "store": {"path": str(folder / "watch.sqlite3")},
        "hotfolders": {"output_root": str(folder / "output"), "inboxes": [
            {"path": str(folder / "inbox"),
             "recipe": str(RECIPES / "engineering-grey-form4.yaml")}]},
    }), encoding="utf-8")
    return folder


class Answers(dict[str, tuple[int, set[str]]]):
    """Each command line's status and imported modules, by its JSON text; ``crashed`` the
    traceback of each line whose child raised instead."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed: dict[str, str] = {}


@pytest.fixture(scope="module")
def answers(home: Path) -> Answers:
    """What each command line of :func:`_lines` did, each in a child of its own."""
    done = subprocess.run(
        [sys.executable, "-c", CHILDREN, *(json.dumps(line) for line in _lines(home))],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
        env={"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    told = Answers()
    for text in done.stdout.splitlines():
        if text.startswith("["):
            line, status, modules = json.loads(text)
            if status is None:
                told.crashed[line] = modules
            else:
                told[line] = (status, set(modules))
    return told


def imported_by(argv: Sequence[str], answers: Answers) -> tuple[int, set[str]]:
    """The status and the modules of the command line ``argv`` (one of :func:`_lines`)."""
    line = json.dumps(list(argv))
    crash = answers.crashed.get(line)
    assert crash is None, f"{argv} crashed:\n{crash}"
    assert line in answers, f"{argv} ended without an answer"
    return answers[line]


def started(command: str, home: Path, answers: Answers) -> tuple[int, set[str]]:
    """What ``run`` or ``watch`` imported by the time it refused a file that is not there:
    the command itself ran (``--help`` imports only its arguments)."""
    status, modules = imported_by(_missing(command, home), answers)
    assert status == 1  # the missing file, said on stderr
    return status, modules


class TestCommandStarts:
    """The command typed is imported alone, and its path leaves the others' stacks out."""

    def test_validate_checks_the_simulated_fleet_without_numpy_httpx_or_the_pool(
        self, answers: Answers
    ) -> None:
        status, modules = imported_by(
            ["validate", str(RECIPES / "engineering-grey-form4.yaml")], answers)
        assert status == 0
        # The printer check ran (default settings run simulated): the path was taken.
        assert "preform_pipeline.simulator.fleet" in modules
        assert not {"numpy", "httpx", "preform_pipeline.servers.pool"} & modules
        assert not set(_other_commands("validate")) & modules

    def test_jobs_lists_a_store_without_the_executor_the_daemon_or_httpx(
        self, home: Path, answers: Answers
    ) -> None:
        status, modules = imported_by(["jobs", "--store", str(home / "jobs.sqlite3")], answers)
        assert status == 0
        assert "preform_pipeline.commands.jobs" in modules
        # numpy came in through the hot folder's intake: its completeness rule (geometry).
        assert not {"numpy", "httpx", "starlette", "preform_pipeline.executor.runner",
                    "preform_pipeline.hotfolder.daemon", "preform_pipeline.verify.tracking",
                    "preform_pipeline.cloud.auth"} & modules
        # Nor the recipe checker, its schema and the catalogue: the settings' own check (a
        # settings error's line and column) took its report from there (session 45).
        assert not {"preform_pipeline.recipes.validate", "preform_pipeline.recipes.schema",
                    "preform_pipeline.catalogue"} & modules
        # Nor jsonschema and its referencing stack: the settings package imported them at
        # its top for a schema check this line never runs (session 46).
        assert not {"jsonschema", "referencing"} & modules
        assert not set(_other_commands("jobs")) & modules

    def test_verify_on_the_defaults_imports_neither_the_planner_nor_jsonschema(
        self, home: Path, answers: Answers
    ) -> None:
        """``verify`` (a cron line) paid ~60 modules of numpy for the planner, whose build
        plans it names in annotations alone, and ~60 of jsonschema to check settings no file
        or variable gave (session 46)."""
        status, modules = imported_by(["verify", "--store", str(home / "jobs.sqlite3")],
                                      answers)
        assert status == 0  # no pending prints: nothing to verify
        # The tracking of prints and the settings' checker were imported: the path was taken.
        assert {"preform_pipeline.verify.tracking", "preform_pipeline.settings.schema"} <= modules
        assert not {"numpy", "preform_pipeline.plan.builds", "preform_pipeline.geometry.mesh",
                    "jsonschema", "referencing"} & modules
        assert not set(_other_commands("verify")) & modules

    def test_watch_starts_without_the_dashboard_unless_asked_to_serve(
        self, home: Path, answers: Answers
    ) -> None:
        _, modules = started("watch", home, answers)
        assert "preform_pipeline.commands.watch" in modules
        assert not {"starlette", "uvicorn", "jinja2", "preform_pipeline.web.app"} & modules
        # httpx is there, without its own command line (thirdparty.py): no click, no Pygments.
        assert "httpx" in modules
        assert {"click", "pygments"} & modules == set()

    def test_watch_once_on_an_empty_inbox_imports_neither_the_planner_nor_the_runner(
        self, home: Path, answers: Answers
    ) -> None:
        """The daemon made its batch worker at its start, and the worker's module imported the
        planner, the runner and numpy (~110 modules, ~0.13 s of CPU) for batches a cron
        ``watch --once`` that finds nothing never has: they come with the first batch now
        (session 47)."""
        status, modules = imported_by(["watch", "--once", str(home / "watch.yaml")], answers)
        assert status == 0  # stopped after 0 batches
        # The daemon and its worker were made and the recipe was checked against its schema
        # at the start (a broken recipe still refuses there): the path was taken.
        assert {"preform_pipeline.hotfolder.daemon", "preform_pipeline.hotfolder.worker",
                "preform_pipeline.recipes.schema", "jsonschema"} <= modules
        refused = {"numpy", "preform_pipeline.plan.builds", "preform_pipeline.geometry.mesh",
                   "preform_pipeline.executor.runner", "preform_pipeline.executor.steps",
                   "preform_pipeline.executor.feasibility"}
        assert refused & modules == set()

    def test_run_over_an_empty_inbox_imports_neither_the_planner_nor_the_runner(
        self, home: Path, answers: Answers
    ) -> None:
        """A cron ``run`` every minute over an inbox that is mostly empty made an empty plan
        (the planner's module), imported the runner at its start and numpy with both (~0.3 s
        of CPU each time): they come with a model to read or a build to run (session 49)."""
        status, modules = imported_by(_empty_inbox_run(home), answers)
        assert status == 0  # nothing to do
        # The inbox was searched and the store opened for the claims: the path was taken.
        assert {"preform_pipeline.plan.sources", "preform_pipeline.executor.ledger",
                "preform_pipeline.store.sqlite"} <= modules
        refused = {"numpy", "preform_pipeline.plan.builds", "preform_pipeline.geometry.mesh",
                   "preform_pipeline.executor.runner", "preform_pipeline.executor.steps",
                   "preform_pipeline.executor.feasibility"}
        assert refused & modules == set()

    def test_run_starts_without_the_hot_folder_daemon(
        self, home: Path, answers: Answers
    ) -> None:
        """``run`` asks where the simulated fleet's folder is (``fleet_dir_of``); the answer
        lived in ``commands.watch``, whose import brought the daemon, its watcher (watchdog),
        the farm's nodes and the dispatching stack: ~80 modules at every ``run`` start."""
        _, modules = started("run", home, answers)
        # The printers' module, the answer's home now, is imported: the path was taken.
        assert {"preform_pipeline.commands.run", "preform_pipeline.commands._printers"} <= modules
        refused = {"preform_pipeline.commands.watch", "preform_pipeline.hotfolder.daemon",
                   "preform_pipeline.hotfolder.watcher", "preform_pipeline.hotfolder.nodes",
                   "watchdog"}
        assert refused & modules == set()

    # What shows the path was taken: ``run`` imports how it finds its files (the executor's
    # steps, and the legend with them, come with the runner, once there is a build: session
    # 49); ``watch`` the daemon's batch worker (the steps come with its first batch).
    @pytest.mark.parametrize(("command", "taken"), [
        ("run", "preform_pipeline.commands._sources"),
        ("watch", "preform_pipeline.hotfolder.worker")])
    def test_run_and_watch_start_without_pillow(
        self, home: Path, answers: Answers, command: str, taken: str
    ) -> None:
        """Pillow draws a screenshot's legend, which few builds take: ~20 ms of CPU at every
        start of the two commands the suite starts most."""
        _, modules = started(command, home, answers)
        assert {f"preform_pipeline.commands.{command}", taken} <= modules
        assert {m for m in modules if m.split(".")[0] == "PIL"} == set()


#: What no line that only asks for help or the version imports: any command's own module, the
#: executor and numpy, the SQLite store, the settings and jsonschema, httpx, the recipe checker
#: (the recipes package itself hands out its names on first use: a leaf of it may come).
HEAVY_FOR_HELP = frozenset({
    "numpy", "jsonschema", "httpx", "yaml", "preform_pipeline.executor.runner",
    "preform_pipeline.store.sqlite", "preform_pipeline.settings",
    "preform_pipeline.recipes.validate", "preform_pipeline.recipes.schema",
})


class TestHelpAndVersion:
    """``--version``, ``--help`` and a command's ``--help`` build the parser of the command
    named (``commands/arguments/``) and import none of the commands: ``--version`` imported
    every command's stack (867 modules, 0.7 s of CPU) to build a parser it never used."""

    @pytest.mark.parametrize("argv", [["--version"], ["--help"], ["no-such-command"]],
                             ids=" ".join)
    def test_a_line_naming_no_command_imports_none(
        self, answers: Answers, argv: list[str]
    ) -> None:
        status, modules = imported_by(argv, answers)
        assert status in (0, 2)  # the usage error of the last one
        # The table of commands was read: the path was taken.
        assert "preform_pipeline.commands.arguments" in modules
        assert not set(COMMAND_MODULES) & modules
        assert not {m for m in modules if m.startswith("preform_pipeline.commands.arguments.")
                    and m != "preform_pipeline.commands.arguments.common"}
        assert not HEAVY_FOR_HELP & modules

    # Every command (review rv45-spawn: four were, so a command added as CONTRIBUTING.md says
    # went unchecked), as each is listed in the table.
    @pytest.mark.parametrize("command", list(COMMANDS))
    def test_a_commands_help_imports_its_arguments_alone(
        self, answers: Answers, command: str
    ) -> None:
        status, modules = imported_by([command, "--help"], answers)
        assert status == 0
        assert f"preform_pipeline.commands.arguments.{command}" in modules
        assert not set(COMMAND_MODULES) & modules
        # validate's included (review rv45-spawn): its default timeout, read from the recipe
        # checker, brought jsonschema, the schema and the settings (124 modules).
        assert not HEAVY_FOR_HELP & modules


def brought_by(module: str, names: set[str]) -> list[str]:
    """Which of ``names`` a fresh interpreter has imported once it imported ``module``."""
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys, {module}; "
         f"print(json.dumps(sorted(set({sorted(names)!r}) & set(sys.modules))))"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    brought: list[str] = json.loads(done.stdout.splitlines()[-1])
    return brought


class TestTheIntakePath:
    """The hot folder's intake judges whether a file is whole from its bytes: importing it
    (``jobs`` does, for the outcome folders) imports neither numpy nor a model reader."""

    def test_the_intake_imports_no_numpy(self) -> None:
        assert brought_by("preform_pipeline.hotfolder.intake", {
            "numpy", "preform_pipeline.geometry.stl", "preform_pipeline.geometry.threemf"}) == []


class TestTheConsolePath:
    """The commands' console (progress, summaries, plan warnings) names plans, builds and
    meshes in annotations alone: importing it imports neither the planner nor numpy, which
    ``verify`` paid through the print tracking's build plans, and ``watch`` through the console
    (session 46)."""

    def test_the_console_imports_no_planner_or_numpy(self) -> None:
        assert brought_by("preform_pipeline.commands._console", {
            "numpy", "preform_pipeline.plan.builds", "preform_pipeline.geometry.mesh"}) == []


def _importtime_modules(stderr_lines: list[str]) -> set[str]:
    """The modules a process's ``-X importtime`` lines name."""
    return {line.split("|")[-1].strip() for line in stderr_lines
            if line.startswith("import time:")}


#: The arguments the server pool starts a simulator with (``servers/process.py``); the
#: helper adds a port, a fleet folder and a work folder of the test's own.
POOL_ARGS = ("--scene-cache-size", "100")

#: What the simulator's operations import when first used (``simulator/engine.py``): numpy,
#: the mesh code, and the engine's siblings that need them.
GEOMETRY_MODULES = {
    "numpy", "preform_pipeline.geometry.mesh", "preform_pipeline.geometry.transforms",
    "preform_pipeline.geometry.readers", "preform_pipeline.simulator.estimates",
    "preform_pipeline.simulator.layout", "preform_pipeline.simulator.outline_pack",
    "preform_pipeline.simulator.editing", "preform_pipeline.simulator.meshops",
    "preform_pipeline.simulator.contact", "preform_pipeline.simulator.formfile",
    "preform_pipeline.simulator.screenshot",
}


@pytest.fixture(scope="class")
def started_simulator() -> set[str]:
    """What one simulator, started as the pool starts it, imported up to READY FOR INPUT
    (its ``-X importtime`` lines)."""
    with start_simulator(*POOL_ARGS, env={"PYTHONPROFILEIMPORTTIME": "1"}) as sim:
        pass  # it printed READY FOR INPUT; stopped on leaving, so its stderr is whole
    return _importtime_modules(sim.stderr_lines)


class TestSimulatorStart:
    """A simulated PreFormServer (the pool starts one per server) reads its fleet without
    the Web API client: the fleet's outcomes use one cloud model, not httpx and OAuth."""

    def test_the_device_list_imports_no_http_client(self) -> None:
        assert brought_by("preform_pipeline.simulator.devices",
                          {"httpx", "preform_pipeline.cloud.auth"}) == []

    def test_a_start_to_ready_imports_neither_pillow_nor_yaml(
        self, started_simulator: set[str]
    ) -> None:
        """Pillow (screenshots) and PyYAML (an outcomes file) are imported when used: the
        suite starts ~280 simulators, most of which use neither."""
        # The engine's options and the fleet's outcomes are in the list: the path was taken.
        assert {"preform_pipeline.simulator.options",
                "preform_pipeline.simulator.cloud.outcomes"} <= started_simulator
        assert not {"PIL", "PIL.Image", "yaml"} & started_simulator

    def test_the_screenshot_module_imports_no_pillow(self) -> None:
        """screenshot.py is no longer imported at a start (it comes with the first
        screenshot), so its own import is what keeps Pillow for the first image."""
        assert brought_by("preform_pipeline.simulator.screenshot", {"PIL", "PIL.Image"}) == []

    def test_a_start_to_ready_imports_no_numpy_or_mesh_code(
        self, started_simulator: set[str]
    ) -> None:
        """The engine is built before READY FOR INPUT (its fleet, scene store and account);
        numpy and the geometry come with the first operation on a model: most of the
        simulators the suite and the pools start are asked GET / and little more."""
        # The engine's own imports (its options, printing and scene store) are in the list:
        # the path was taken. Not the engine itself: it is imported through importlib
        # (server.load_engine), which -X importtime does not list.
        assert {"preform_pipeline.simulator.options", "preform_pipeline.simulator.printing",
                "preform_pipeline.simulator.scene"} <= started_simulator
        assert GEOMETRY_MODULES & started_simulator == set()

    def test_its_first_model_import_brings_the_geometry_and_works(self) -> None:
        with (start_simulator(*POOL_ARGS, env={"PYTHONPROFILEIMPORTTIME": "1"}) as sim,
              httpx.Client(base_url=sim.url, timeout=TIMEOUT_S) as client):
            scene = client.post("/scene/", json=SCENE).raise_for_status().json()
            model = client.post(f"/scene/{scene['id']}/import-model/",
                                json={"file": str(MODEL)}).raise_for_status().json()
            placed = client.get(f"/scene/{scene['id']}/").raise_for_status().json()
        imported = _importtime_modules(sim.stderr_lines)
        assert [m["id"] for m in placed["models"]] == [model["id"]]
        assert {"numpy", "preform_pipeline.geometry.stl", "preform_pipeline.simulator.editing",
                "preform_pipeline.simulator.estimates"} <= imported

    def test_a_start_to_ready_imports_no_rich(self, started_simulator: set[str]) -> None:
        """structlog is imported without rich (``thirdparty.py``): a simulator prints no table."""
        assert "structlog" in started_simulator
        # Not "rich" itself: structlog's failed attempt at it has an importtime line too.
        assert not {"rich.console", "rich.traceback", "rich.pretty", "pygments"} & started_simulator

    def test_a_start_to_ready_reads_times_without_the_cloud_models(
        self, started_simulator: set[str]
    ) -> None:
        """The fleet's outcomes parse timestamps (``cloud.primitives``), not the models."""
        assert "preform_pipeline.cloud.primitives" in started_simulator
        assert "preform_pipeline.cloud.models" not in started_simulator


class TestSimulatorStartsThatNeverReachTheEngine:
    """A simulator that ends before its engine is loaded (a crash-looping server played with
    ``--fail-start``, which pools' restart tests start again and again; ``--help``; a usage
    error) imports no numpy: its command line set the ``--drive`` mounts through
    ``bodies``, the request bodies' module, and numpy came with it."""

    @pytest.mark.parametrize("argv", [["--fail-start"], ["--help"], ["--drive", "Z"]],
                             ids=" ".join)
    def test_it_imports_no_numpy(self, argv: list[str]) -> None:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "preform_pipeline.simulator", *argv],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
        )
        assert done.returncode in (EXIT_INJECTED_FAULT, EXIT_OK, EXIT_USAGE), done.stderr
        imported = _importtime_modules(done.stderr.splitlines())
        # Its command line, with the drives' module, was imported: the path was taken.
        assert {"preform_pipeline.simulator.cli", "preform_pipeline.simulator.drives"} <= imported
        assert not {"numpy", "preform_pipeline.simulator.bodies",
                    "preform_pipeline.geometry.transforms"} & imported


class TestDashboardSimulatorStart:
    """A simulated Dashboard reads no model: its start imports no numpy, no PreFormServer
    simulator's engine or command line, no cloud models and no rich."""

    def test_a_start_to_ready_imports_no_numpy_models_or_rich(self) -> None:
        with start_dashboard(env={"PYTHONPROFILEIMPORTTIME": "1"}) as dashboard:
            pass  # it printed READY FOR INPUT; stopped on leaving, so its stderr is whole
        imported = _importtime_modules(dashboard.stderr_lines)
        # Its fleet view, filters and timelines are in the list: the path was taken.
        assert {"preform_pipeline.simulator.cloud.fleet_view",
                "preform_pipeline.cloud.filters", "preform_pipeline.simulator.fleet"} <= imported
        refused = {"numpy", "preform_pipeline.simulator.cli", "preform_pipeline.simulator.bodies",
                   "preform_pipeline.simulator.estimates", "preform_pipeline.cloud.models",
                   "rich.console", "pygments"}
        assert refused & imported == set()


class TestCommandNames:
    """The CLI finds a command's module by its name, so the two must agree."""

    @pytest.mark.parametrize("module_name", COMMAND_MODULES)
    def test_each_command_is_named_as_its_module(self, module_name: str) -> None:
        named = importlib.import_module(module_name).NAME
        assert named == module_name.rpartition(".")[2]
