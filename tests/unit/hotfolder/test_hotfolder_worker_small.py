"""The hot folder's worker, the functions mutmut had never run (session 20, s20-small): a
batch abandoned while the store fails, a split build's records, builds held for fill, a build
whose lease this node lost, the print hooks the worker wraps, and the pool's start and close.
Each is read where a user reads it: the outcome folders, the store's builds and their
history, the printed jobs in the fleet folder and the structured events."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_support import (
    DummyPool,
    Script,
    ScriptedRunner,
    drop,
    make_daemon,
    names,
    processing_job,
    run_daemon_once,
)
from structlog.testing import capture_logs

from preform_pipeline.api import PreFormClient
from preform_pipeline.errors import PipelineError, StoreError
from preform_pipeline.executor import (
    BuildOutcome,
    BuildStatus,
    Reporter,
    RunOptions,
    RunResult,
)
from preform_pipeline.hotfolder import sharedpool
from preform_pipeline.hotfolder.batcher import Batch, BatchItem
from preform_pipeline.hotfolder.daemon import HotFolderDaemon
from preform_pipeline.hotfolder.nodes import BuildStops
from preform_pipeline.hotfolder.testing import fleet_jobs, tetra_stl_bytes, wait_for, write_recipe
from preform_pipeline.hotfolder.worker import BatchWorker
from preform_pipeline.plan.builds import BuildPlan, Plan
from preform_pipeline.printing import SendHolder
from preform_pipeline.recipes.model import Recipe
from preform_pipeline.settings.hotfolder import BatchingSettings
from preform_pipeline.simulator.devices import printer_status
from preform_pipeline.simulator.fleet import DEFAULT_PRINTERS
from preform_pipeline.store import Build, Job, JobState, SqliteJobStore

#: What the store seams say when they fail (a database restart).
AWAY = "the job store is away"
#: How long a test waits for what a daemon thread does (far more than it takes).
WAIT_S = 10.0


class _StoreRefusingTheFirstBuild(SqliteJobStore):
    """The store seam: the first build's move to preparing fails (the store was away for that
    one write); with ``away_after``, the build read and the job read that follow fail too."""

    def __init__(self, path: Path, *, away_after: bool = False) -> None:
        super().__init__(path)
        self.refuse_build = True
        self.refuse_reads = 0
        self.away_after = away_after

    def transition_build(self, build_id: int, to_state: JobState, reason: str,
                         **changes: Any) -> Build:
        if to_state is JobState.PREPARING and self.refuse_build:
            self.refuse_build = False
            self.refuse_reads = 2 if self.away_after else 0
            raise StoreError(f"{AWAY} (moving build {build_id})", hint="it comes back")
        return super().transition_build(build_id, to_state, reason, **changes)

    def get_build(self, build_id: int) -> Build:
        if self.refuse_reads == 2:
            self.refuse_reads = 1
            raise StoreError(f"{AWAY} (reading build {build_id})", hint="it comes back")
        return super().get_build(build_id)

    def get_job(self, job_id: int) -> Job:
        if self.refuse_reads == 1:
            self.refuse_reads = 0
            raise StoreError(f"{AWAY} (reading job {job_id})", hint="it comes back")
        return super().get_job(job_id)


class TestABatchAbandonedWhenItsBuildCannotBeRecorded:
    """A batch whose first build cannot be moved to preparing is taken apart, saying so, and
    its file is batched again and printed once by the same run."""

    def test_the_build_says_why_it_was_taken_apart_and_the_file_prints_once(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        with _StoreRefusingTheFirstBuild(tmp_path / "jobs.sqlite3") as store, \
                capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            first, second = store.list_builds()
            first_reason = store.build_history(first.id)[-1].reason
            (job,) = store.list_jobs()
        assert (first.state, first_reason) == (
            JobState.CANCELLED, "its batch was abandoned before it ran")
        assert (second.state, job.state, job.build_id) == (
            JobState.PRINT_SENT, JobState.PRINT_SENT, second.id)
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert names(tmp_path / "inbox" / "done") == ["p.stl", "p.stl.report.json"]
        (abandoned,) = [e for e in logs if e["event"] == "batch_abandoned"]
        assert (abandoned["builds"], abandoned["error"]) == (
            1, f"{AWAY} (moving build {first.id}) (it comes back)")


class TestABatchAbandonedWhileTheStoreStaysAway:
    """A batch abandoned while the store is still away cannot take its build apart: the
    build and the job read are logged with their errors, the file waits in processing/, and
    the next start prints it once."""

    def test_each_failure_is_logged_and_the_next_start_prints_the_file(
        self, tmp_path: Path, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        path = tmp_path / "jobs.sqlite3"
        with _StoreRefusingTheFirstBuild(path, away_after=True) as store, \
                capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            (left,) = store.list_builds()
            (job,) = store.list_jobs()
        assert left.state is JobState.PROCESSING  # not taken apart: it could not be read
        assert fleet_jobs(script.fleet_dir) == []
        assert [p.split("/")[-1] for p in names(tmp_path / "inbox" / "processing")] == [
            "p.stl"]
        (kept,) = [e for e in logs if e["event"] == "build_not_dissolved"]
        assert (kept["build_id"], kept["error"]) == (
            left.id, f"{AWAY} (reading build {left.id}) (it comes back)")
        (unread,) = [e for e in logs if e["event"] == "batch_given_back_unread"]
        assert (unread["jobs"], unread["error"]) == (
            1, f"{AWAY} (reading job {job.id}) (it comes back)")
        with SqliteJobStore(path) as store:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
            states = [b.state for b in store.list_builds()]
        assert states == [JobState.CANCELLED, JobState.PRINT_SENT]
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert names(tmp_path / "inbox" / "done") == ["p.stl", "p.stl.report.json"]


class TestASplitBuildsRecords:
    """A build split in two says so in its history, each half names the build it came from,
    and a case dropped from a half fails alone while the rest print."""

    DROPPED = "case C-2: model upper.stl: step label: LABEL_FAILED"

    def test_the_parent_and_its_halves_say_what_happened_and_the_dropped_case_fails(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        for n, case in enumerate(("C-1", "C-2", "C-3", "C-4")):
            drop(tmp_path, f"{case}/upper.stl", tetra_stl_bytes(n))

        def drop_c2_from_a_half(build: BuildPlan) -> list[tuple[Path, str]]:
            return [(m.path, self.DROPPED) for m in build.models
                    if m.case_id == "C-2" and "." in build.name]

        script.split_first = True
        script.drop = drop_c2_from_a_half
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        parent, *halves = store.list_builds()
        first_half = f"{parent.job_key}.1"  # the runner's name for the first half
        assert (parent.state, store.build_history(parent.id)[-1].reason) == (
            JobState.CANCELLED,
            f"split: the models did not fit one platform ({first_half} and its sibling)")
        assert len(halves) == 2
        for half in halves:
            reasons = [t.reason for t in store.build_history(half.id)][:2]
            assert reasons == [f"half of build {parent.job_key}", "split half sent to the pool"]
        jobs = {j.case_id: j for j in store.list_jobs()}
        assert (jobs["C-2"].state, jobs["C-2"].reason) == (JobState.FAILED, self.DROPPED)
        assert {jobs[c].state for c in ("C-1", "C-3", "C-4")} == {JobState.PRINT_SENT}
        assert len(fleet_jobs(script.fleet_dir)) == 2
        assert self.DROPPED in (tmp_path / "inbox" / "failed" / "C-2" /
                                "upper.stl.error.txt").read_text(encoding="utf-8")


class TestACaseDroppedAfterItsBuildWasSentBack:
    """A case dropped from a build a user's cancel already sent back is not failed: the
    store refuses (the job waits to be batched again), the event says so, and the file is
    printed once in a new build without the cancelled one."""

    def test_the_dropped_case_prints_in_the_next_build(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "C-1/upper.stl", tetra_stl_bytes(1))
        drop(tmp_path, "C-2/upper.stl", tetra_stl_bytes(2))

        def cancel_c1_then_drop_c2(build: BuildPlan) -> list[tuple[Path, str]]:
            jobs = {j.case_id: j for j in store.list_jobs()}
            if jobs["C-1"].state is JobState.CANCELLED:
                return []  # the new build, without C-1
            store.transition(jobs["C-1"].id, JobState.CANCELLED, "cancelled by a user")
            return [(m.path, "case C-2: step label: LABEL_FAILED") for m in build.models
                    if m.case_id == "C-2"]

        script.drop = cancel_c1_then_drop_c2
        with capture_logs() as logs:
            run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path)))
        jobs = {j.case_id: j for j in store.list_jobs()}
        assert jobs["C-2"].state is JobState.PRINT_SENT
        (printed,) = fleet_jobs(script.fleet_dir)
        assert jobs["C-2"].print_job_id == printed["job_id"]
        (refused,) = [e for e in logs if e["event"] == "dropped_job_not_failed"]
        assert refused["job_key"] == jobs["C-2"].job_key


class TestBuildsHeldForFill:
    """Of a batch's builds, only those below min_fill wait (min_fill to a part per million is
    enough): the full one prints at once, alone, and the held one after max_hold_s."""

    # One model per build: 100 mm fills 0.2 of the platform (exactly min_fill; computed from
    # float32 coordinates it comes out 0.2 or a few parts per billion under it, by the CPU),
    # 99.9999 mm 0.2 less 4e-7 on every machine, and 78.5 mm 0.1232 (shown as 0.123).
    @pytest.mark.parametrize("full_mm", [100.0, 99.9999], ids=["exactly", "a-hair-under"])
    def test_the_full_build_prints_first_and_the_hold_names_the_held_fill(
        self, tmp_path: Path, store: SqliteJobStore, script: Script, full_mm: float
    ) -> None:
        drop(tmp_path, "full.stl", tetra_stl_bytes(1, size_mm=full_mm))
        drop(tmp_path, "part.stl", tetra_stl_bytes(2, size_mm=78.5))
        # The held build goes back to the loop before the full one's run starts; with a
        # hold of 0.3 s a loaded machine could release it first, so the hold is 3 s.
        daemon = make_daemon(
            tmp_path, store, script, write_recipe(tmp_path, per_build=1),
            batching=BatchingSettings(window_s=0.05, min_fill=0.2, max_hold_s=3.0))
        thread = threading.Thread(target=daemon.run)  # not once: a once-run forces its batches
        with capture_logs() as logs:
            thread.start()
            try:
                wait_for(lambda: len(fleet_jobs(script.fleet_dir)) == 2, WAIT_S,
                         what="both prints")
            finally:
                daemon.stop()
                thread.join(WAIT_S)
        jobs = {j.original_name: j for j in store.list_jobs()}
        keys = {b.id: b.job_key for b in store.list_builds()}
        full, part = jobs["full.stl"].build_id, jobs["part.stl"].build_id
        assert full is not None and part is not None
        assert script.runs == [(keys[full],), (keys[part],)]  # the full one first, alone
        assert {j.state for j in jobs.values()} == {JobState.PRINT_SENT}
        held = [(e["held_items"], e["fill"], e["min_fill"]) for e in logs
                if e["event"] == "builds_held_for_fill"]
        assert held == [(1, [0.123], 0.2)]


#: Why the lease-renewal thread stops a build (the node holding it now carries on).
LEASE_LOST = "the lease of the build was lost: another node holds it now"


def _runner_losing_a_lease(stops: BuildStops, loses: str) -> type[ScriptedRunner]:
    """The scripted runner on a node whose lease-renewal thread loses the lease of the build
    holding ``loses`` while it is prepared: the build asks ``stop_reason`` before its print
    step, as the executor does before each step, and ends cancelled with that reason."""
    stopped: dict[str, str] = {}  # build name -> why it stopped

    class _RunnerLosingALease(ScriptedRunner):
        def _print(self, build: BuildPlan) -> str | None:
            store = self.script.store
            assert store is not None
            if any(m.path.name == loses for m in build.models):
                stored = next(b for b in store.list_builds() if b.job_key == build.name)
                stops.stop(stored.id, LEASE_LOST)  # the node's lease-renewal thread
            ask = self.options.stop_reason
            reason = ask(build.name) if ask is not None else None
            if reason is not None:
                stopped[build.name] = reason
                return None
            return super()._print(build)

        def _outcome(self, build: BuildPlan, status: BuildStatus, reason: str | None = None,
                     job_id: str | None = None, children: tuple[str, ...] = ()) -> BuildOutcome:
            if build.name in stopped:
                status, reason = BuildStatus.CANCELLED, stopped[build.name]
            return super()._outcome(build, status, reason, job_id, children)

    return _RunnerLosingALease


def _on_a_node(daemon: HotFolderDaemon, stops: BuildStops) -> HotFolderDaemon:
    """``daemon`` with its worker made as a node's daemon makes it, with the node's stop
    signals (a real node's daemon needs a PostgreSQL store; its worker reads only these)."""
    old = daemon.worker
    daemon.worker = BatchWorker(
        old.store, old.hot, old.recipes, old.outcomes, old.recovery, old.owner,
        old.pool.factory, old.executor, reporter=old.reporter, run_options=old.run_options,
        dry_run=old.dry_run, stop=old.stop_event, stop_now=old.stop_now,
        give_back=old.give_back, output_root=old.output_root, on_wait=old.on_wait,
        known_printers=old.known_printers, local_copies=old.local_copies, stops=stops,
        servers=old.servers, printer_claims=old.printer_claims)
    return daemon


class TestABuildWhoseLeaseThisNodeLost:
    """On a node of a shared store, a build whose lease the node lost mid-run is stopped
    before its print and left to the node that holds it now: nothing of it is printed,
    written or settled here; the batch's other build prints and settles as usual."""

    def test_the_lost_build_is_left_alone_and_the_other_prints(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "lost.stl", tetra_stl_bytes(1))
        drop(tmp_path, "kept.stl", tetra_stl_bytes(2))
        stops = BuildStops()
        daemon = _on_a_node(make_daemon(tmp_path, store, script,
                                        write_recipe(tmp_path, per_build=1),
                                        runner=_runner_losing_a_lease(stops, "lost.stl")),
                            stops)
        with capture_logs() as logs:
            run_daemon_once(daemon)
        jobs = {j.original_name: j for j in store.list_jobs()}
        lost, kept = (store.get_build(jobs[n].build_id or 0) for n in ("lost.stl", "kept.stl"))
        assert (lost.state, jobs["lost.stl"].state) == (JobState.PREPARING, JobState.PREPARING)
        assert (kept.state, jobs["kept.stl"].state) == (JobState.PRINT_SENT, JobState.PRINT_SENT)
        (printed,) = fleet_jobs(script.fleet_dir)
        assert kept.print_job_id == printed["job_id"]
        inbox = tmp_path / "inbox"
        assert names(inbox / "done") == ["kept.stl", "kept.stl.report.json"]
        assert names(inbox / "processing") == [f"{jobs['lost.stl'].job_key}/lost.stl"]
        (left,) = [e for e in logs if e["event"] == "build_left_to_new_holder"]
        assert (left["build"], left["build_id"], left["status"]) == (
            lost.job_key, lost.id, "cancelled")
        assert stops.reason(lost.id) is None  # the batch is over: the node forgets the stop


#: The server a send is handed to, as the executor names it (a remote server: no process).
HOLDER = SendHolder(server="http://10.0.0.7:44388", request_timeout_s=30.0, remote=True)
#: What a printer says when it refuses a print.
REFUSAL = "PRINTER_OFFLINE: the printer is offline"


class _SendsAsTheExecutor:
    """A build's print hooks used as the executor uses them: the printer resolved through
    the hooks, the send made with its holder and the saved .form; ``refuse``: the printer
    refuses the print (``refused`` where an accepted print says ``sent``)."""

    def __init__(self, inner: Any, recipe: Recipe, form: Path, refuse: bool,
                 client: PreFormClient | None) -> None:
        self.inner = inner
        self.recipe = recipe
        self.form = form
        self.refuse = refuse
        self.client = client
        self.resolved: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def before_send(self, job_name: str, printer: str, **kwargs: Any) -> str | None:
        # The build's server's Local API client (None: a named printer is not looked up).
        self.resolved = self.inner.resolve_printer(printer, self.recipe, self.client)
        self.form.parent.mkdir(parents=True, exist_ok=True)
        self.form.write_bytes(b"a saved .form")
        return self.inner.before_send(  # type: ignore[no-any-return]
            job_name, self.resolved, holder=HOLDER, form_path=self.form)

    def sent(self, job_id: str | None, printer: str) -> None:
        if self.refuse:
            self.inner.refused(REFUSAL)
        else:
            self.inner.sent(job_id, self.resolved or printer)


class _TrackingAsTheExecutor:
    def __init__(self, inner: Any, recipe: Recipe, forms: Path, refuse: bool,
                 client: PreFormClient | None) -> None:
        self.inner = inner
        self.recipe = recipe
        self.forms = forms
        self.refuse = refuse
        self.client = client

    def for_build(self, build: BuildPlan) -> _SendsAsTheExecutor:
        return _SendsAsTheExecutor(self.inner.for_build(build), self.recipe,
                                   self.forms / f"{build.name}.form", self.refuse, self.client)

    def after_run(self, result: RunResult, stop: threading.Event) -> RunResult:
        return self.inner.after_run(result, stop)  # type: ignore[no-any-return]


def _runner_as_the_executor(
    refuse: bool = False, client: PreFormClient | None = None
) -> type[ScriptedRunner]:
    """The scripted runner sending as the executor does (:class:`_SendsAsTheExecutor`) and,
    as the executor does, handing its result to the print hooks' ``after_run`` at the end."""

    class _RunnerAsTheExecutor(ScriptedRunner):
        def __init__(self, script: Script, plan: Plan, options: RunOptions,
                     reporter: Reporter) -> None:
            hooks = _TrackingAsTheExecutor(options.print_tracking, plan.recipe,
                                           options.output_root / "forms", refuse, client)
            super().__init__(script, plan, replace(options, print_tracking=hooks), reporter)

        def _outcome(self, build: BuildPlan, status: BuildStatus, reason: str | None = None,
                     job_id: str | None = None, children: tuple[str, ...] = ()) -> BuildOutcome:
            if refuse and status is BuildStatus.SUCCEEDED:
                status, reason, job_id = BuildStatus.FAILED, REFUSAL, None
            return super()._outcome(build, status, reason, job_id, children)

        def run(self) -> RunResult:
            tracking = self.options.print_tracking
            assert tracking is not None
            return tracking.after_run(super().run(), threading.Event())

    return _RunnerAsTheExecutor


class TestAPrintSentAsTheExecutorSendsIt:
    """A print sent with its holder is recorded with the holder while it is sent, then as
    accepted by its printer with its job; its job name carries the build's key once."""

    def test_the_build_names_its_holder_printer_and_job(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        holders: list[Any] = []
        original = store.transition_build

        def watch(build_id: int, to_state: JobState, reason: str, **changes: Any) -> Build:
            build = original(build_id, to_state, reason, **changes)
            if to_state is JobState.PRINT_SENDING:
                holders.append(build.send_holder)
            return build

        store.transition_build = watch  # type: ignore[method-assign]
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                    runner=_runner_as_the_executor()))
        (printed,) = fleet_jobs(script.fleet_dir)
        (build,) = store.list_builds()
        assert holders == [HOLDER.to_json()]
        assert (build.state, build.printer, build.print_job_id) == (
            JobState.PRINT_SENT, "SimulatedForm4-1", printed["job_id"])
        assert store.build_history(build.id)[-1].reason == (
            f"accepted by SimulatedForm4-1 as job {printed['job_id']}")
        assert printed["job_name"].count(build.job_key) == 1


def _naming_jobs(recipe: Path, job_name: str, *, fields: tuple[str, ...] = ()) -> Path:
    """``recipe`` (write_recipe's) with its print step's ``job_name`` and its ``fields:``."""
    text = recipe.read_text(encoding="utf-8").replace(
        "printer: SimulatedForm4-1", f"printer: SimulatedForm4-1\n      job_name: {job_name}")
    declared = f"fields: [{', '.join(fields)}]\n" if fields else ""
    recipe.write_text(declared + text, encoding="utf-8")
    return recipe


def _local_api(devices: list[dict[str, Any]]) -> PreFormClient:
    """A build server's Local API client whose ``/devices/`` lists ``devices`` (the httpx
    transport seam)."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/devices/"
        return httpx.Response(200, json={"count": len(devices), "devices": devices})

    return PreFormClient("http://127.0.0.1:44388", transport=httpx.MockTransport(answer),
                         check_version_on_first_use=False)


class TestAPrintToAuto:
    """A recipe printing to ``auto`` prints on a free printer of its machine type and
    material among those the build's server lists; the build records which."""

    def test_the_build_is_sent_to_the_free_printer_the_server_lists(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        free = next(p.serial for p in DEFAULT_PRINTERS if p.machine_type_id == "FORM-4-0"
                    and p.material_code == "FLGPGR05" and p.status == "IDLE")
        with _local_api([printer_status(p) for p in DEFAULT_PRINTERS]) as local:
            run_daemon_once(make_daemon(tmp_path, store, script,
                                        write_recipe(tmp_path, printer="auto"),
                                        runner=_runner_as_the_executor(client=local)))
        (build,) = store.list_builds()
        assert (build.state, build.printer) == (JobState.PRINT_SENT, free)
        assert f"sending the print to {free}" in [
            t.reason for t in store.build_history(build.id)]
        assert len(fleet_jobs(script.fleet_dir)) == 1


class TestAJobNameWithoutTheKey:
    """A recipe's job name that does not carry the build's key gets it, so the print can be
    found by its key; one that carries it keeps it once."""

    def test_the_printed_job_names_end_with_the_builds_key(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        recipe = _naming_jobs(write_recipe(tmp_path), "nightly")
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        (printed,) = fleet_jobs(script.fleet_dir)
        (build,) = store.list_builds()
        assert (printed["job_name"], build.job_name) == (f"nightly {build.job_key}",) * 2


class TestAPrintThePrinterRefuses:
    """A print the printer refuses fails its build with the printer's words, and the file
    goes to failed/ saying so."""

    def test_the_build_and_the_note_give_the_printers_reason(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                    runner=_runner_as_the_executor(refuse=True)))
        (build,) = store.list_builds()
        assert (build.state, store.build_history(build.id)[-1].reason) == (
            JobState.FAILED, f"the server refused the print: {REFUSAL}")
        note = (tmp_path / "inbox" / "failed" / "p.stl.error.txt").read_text(encoding="utf-8")
        assert REFUSAL in note


class TestAPrintWaitingForApproval:
    """A print the recipe holds for an operator's approval waits in the store with its
    saved .form (what is sent once approved); nothing is printed yet."""

    def test_the_build_waits_with_its_saved_form(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        inbox = tmp_path / "inbox"
        job_id = processing_job(store, inbox, "p.stl")
        recipe = write_recipe(tmp_path, approval=True, extra_steps=("save_form", "screenshot"))
        daemon = make_daemon(tmp_path, store, script, recipe, runner=_runner_as_the_executor())
        daemon.worker.run_batch(
            Batch("hot", (BatchItem(f"job:{job_id}", "hot", (job_id,), 0.0),), "flush"))
        (build,) = store.list_builds()
        assert build.state is JobState.AWAITING_APPROVAL
        assert build.form_path is not None and build.form_path.read_bytes() == b"a saved .form"
        assert fleet_jobs(script.fleet_dir) == []


class TestAJobKeyInARecipesTemplate:
    """A recipe's job name may name the job's own key (``{job_key}``); the build's key is
    appended after it, as to any name without the build's key."""

    def test_the_printed_job_name_carries_both_keys(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        # A model field in a job name needs one model per build and the field declared.
        recipe = _naming_jobs(write_recipe(tmp_path, per_build=1), "job {job_key}",
                              fields=("job_key",))
        run_daemon_once(make_daemon(tmp_path, store, script, recipe))
        (printed,) = fleet_jobs(script.fleet_dir)
        (job,) = store.list_jobs()
        (build,) = store.list_builds()
        assert printed["job_name"] == f"job {job.job_key} {build.job_key}"


class TestThePool:
    """The pool a batch started is closed when the daemon stops; one that failed to start
    is tried again after the retry wait, and the batch then prints."""

    def test_the_started_pool_is_closed_when_the_daemon_stops(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        started: list[DummyPool] = []

        def pool() -> DummyPool:
            started.append(DummyPool())
            return started[-1]

        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        run_daemon_once(make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                                    pool=pool))
        assert len(fleet_jobs(script.fleet_dir)) == 1
        assert [p.closed for p in started] == [True]

    def test_a_pool_that_failed_once_is_started_again_and_the_file_prints(
        self, tmp_path: Path, store: SqliteJobStore, script: Script,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The retry wait is the pool keeper's clock here: shortened so the test does not
        # wait 10 s.
        monkeypatch.setattr(sharedpool, "DEFAULT_START_RETRY_S", 0.05)
        tries: list[str] = []

        def pool() -> DummyPool:
            tries.append("try")
            if len(tries) == 1:
                raise PipelineError("the license server did not answer", hint="try again")
            return DummyPool()

        drop(tmp_path, "p.stl", tetra_stl_bytes(1))
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path), pool=pool)
        thread = threading.Thread(target=daemon.run)
        with capture_logs() as logs:
            thread.start()
            try:
                wait_for(lambda: bool(fleet_jobs(script.fleet_dir)), WAIT_S, what="the print")
            finally:
                daemon.stop()
                thread.join(WAIT_S)
        assert len(tries) == 2 and len(fleet_jobs(script.fleet_dir)) == 1
        assert [(e["error"], e["retry_in_s"]) for e in logs
                if e["event"] == "pool_start_failed"] == [
            ("the license server did not answer (try again)", 0.05)]


class TestASweepWhileASplitBuildsHalvesRun:
    """The loop's periodic sweep of processing/, run while a split build's halves are not
    yet settled, leaves their files to the batch: each file's report names its run's
    report, which only the batch's own settling gives it."""

    def test_each_printed_file_is_settled_by_its_batch_with_the_run_report(
        self, tmp_path: Path, store: SqliteJobStore, script: Script
    ) -> None:
        sweeps: list[Callable[[], None]] = []

        class _RunnerSweptMeanwhile(ScriptedRunner):
            def run(self) -> RunResult:
                result = super().run()
                for sweep in sweeps:  # the loop's sweep, before the batch settles its builds
                    sweep()
                return result

        for i in range(4):
            drop(tmp_path, f"p{i}.stl", tetra_stl_bytes(i))
        script.split_first = True
        daemon = make_daemon(tmp_path, store, script, write_recipe(tmp_path),
                             runner=_RunnerSweptMeanwhile)
        sweeps.append(daemon.outcomes.settle_processing_folders)
        run_daemon_once(daemon)
        assert len(fleet_jobs(script.fleet_dir)) == 2
        done = tmp_path / "inbox" / "done"
        for i in range(4):
            report = json.loads((done / f"p{i}.stl.report.json").read_text(encoding="utf-8"))
            assert "run_report" in report, f"p{i}.stl was settled without its run's report"
            assert Path(report["run_report"]).parent == tmp_path / "out" / "reports"
