"""The waiting queue: free printers go to waiting builds by priority, then age; late waits
notify once and never fail (a real SQLite store, printer status faked at its protocol)."""

from __future__ import annotations

from collections.abc import Sequence

from preform_pipeline.clock import ManualClock
from preform_pipeline.dispatch.waiting import Dispatcher
from preform_pipeline.errors import PermanentApiError, PipelineError
from preform_pipeline.printing import PrintOwner
from preform_pipeline.printing.target import PrintTarget
from preform_pipeline.store import Build, JobState, SqliteJobStore
from preform_pipeline.verify.targets import CombinedReadiness, PrinterCandidate

FORM4, GREY = "FORM-4-0", "FLGPGR05"


class Printers:
    """Printer status as a test sets it; ``printer_candidates`` is what dispatch reads."""

    description = "test printers"

    def __init__(self, *names: str) -> None:
        self.busy: dict[str, str | None] = {n: None for n in names}
        self.reads = 0

    def printer_candidates(self) -> Sequence[PrinterCandidate]:
        self.reads += 1
        return [PrinterCandidate(n, (FORM4,), (GREY,), True, busy=b)
                for n, b in self.busy.items()]


class Recorder:
    """Sends through the print owner, as the real sender does, and remembers the order."""

    def __init__(self, owner: PrintOwner, printers: Printers) -> None:
        self.owner = owner
        self.printers = printers
        self.sent: list[tuple[str, str]] = []
        self.refuse: set[str] = set()

    def __call__(self, build: Build, printer: str) -> None:
        self.owner.begin(build.id, build.job_name or build.job_key, printer, None)
        if build.job_key in self.refuse:
            self.owner.refused(build.id, "no")
            raise PermanentApiError("refused", code="NO", status_code=400)
        self.owner.sent(build.id, f"job-{build.id}", printer)
        self.printers.busy[printer] = "printing" if printer in self.printers.busy else None
        self.sent.append((build.job_key, printer))


def waiting_build(
    store: SqliteJobStore, owner: PrintOwner, clock: ManualClock, *, priority: int = 0,
    target: PrintTarget | None = None,
) -> Build:
    job = store.create_job(recipe="r", source_path=f"/in/{clock.now().timestamp()}.stl",
                           priority=priority, state=JobState.PROCESSING)
    build = store.create_build(recipe="r", job_ids=[job.id])
    store.transition_build(build.id, JobState.PREPARING, "preparing")
    store.transition_build(build.id, JobState.PREPARED, "prepared")
    target = target or PrintTarget(auto=True, machine_type=FORM4, material=GREY)
    waiting = owner.wait_for_printer(build.id, target.to_json(), job_name=build.job_key,
                                     priority=priority, describe=target.describe())
    clock.advance(1)
    return waiting


class TestOrder:
    """Free printers go to the highest priority first, then to the longest waiting."""

    def test_two_printers_five_builds_go_out_as_printers_free_up(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner = PrintOwner(store, clock=clock)
        printers = Printers("A", "B")
        send = Recorder(owner, printers)
        dispatcher = Dispatcher(store, printers, send, clock=clock)
        old, older_urgent, mid, urgent, young = (
            waiting_build(store, owner, clock, priority=p) for p in (0, 5, 0, 5, 0)
        )
        dispatcher.dispatch_once()
        assert send.sent == [(older_urgent.job_key, "A"), (urgent.job_key, "B")]
        assert [b.job_key for b in dispatcher.waiting()] == [old.job_key, mid.job_key,
                                                              young.job_key]
        assert dispatcher.dispatch_once() == ()  # both busy: nobody moves, nobody fails
        printers.busy["B"] = None
        dispatcher.dispatch_once()
        printers.busy["A"] = None
        dispatcher.dispatch_once()
        assert send.sent[2:] == [(old.job_key, "B"), (mid.job_key, "A")]
        assert store.get_build(young.id).state is JobState.WAITING_FOR_PRINTER
        history = [t.to_state for t in store.build_history(old.id)]
        assert history[-3:] == [JobState.WAITING_FOR_PRINTER, JobState.PRINT_SENDING,
                                JobState.PRINT_SENT]

    def test_a_list_target_takes_only_its_printers_and_a_queue_goes_at_once(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner = PrintOwner(store, clock=clock)
        printers = Printers("A", "B")
        printers.busy["A"] = "printing"
        send = Recorder(owner, printers)
        only_a = waiting_build(store, owner, clock, target=PrintTarget(("A",)))
        queue = waiting_build(store, owner, clock, target=PrintTarget(("queue-1",)))
        Dispatcher(store, printers, send, clock=clock).dispatch_once()
        assert send.sent == [(queue.job_key, "queue-1")]
        assert store.get_build(only_a.id).state is JobState.WAITING_FOR_PRINTER

    def test_a_refused_send_fails_that_build_and_the_next_takes_the_printer(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner = PrintOwner(store, clock=clock)
        printers = Printers("A")
        send = Recorder(owner, printers)
        first, second = (waiting_build(store, owner, clock) for _ in range(2))
        send.refuse.add(first.job_key)
        dispatcher = Dispatcher(store, printers, send, clock=clock)
        (result,) = dispatcher.dispatch_once()
        assert result.error is not None and store.get_build(first.id).state is JobState.FAILED
        dispatcher.dispatch_once()
        assert send.sent == [(second.job_key, "A")]


class TestLateWaits:
    """A wait longer than the limit notifies once; the build keeps waiting."""

    def test_the_limit_notifies_once_and_never_fails(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner = PrintOwner(store, clock=clock)
        printers = Printers("A")
        printers.busy["A"] = "printing"
        late: list[tuple[str, float]] = []
        dispatcher = Dispatcher(store, printers, Recorder(owner, printers), clock=clock,
                                notify_after_s=600, on_late=lambda b, s: late.append(
                                    (b.job_key, s)))
        build = waiting_build(store, owner, clock)
        dispatcher.dispatch_once()
        assert late == []
        clock.advance(600)
        dispatcher.dispatch_once()
        dispatcher.dispatch_once()
        assert [key for key, _ in late] == [build.job_key]
        assert late[0][1] >= 600
        assert store.get_build(build.id).state is JobState.WAITING_FOR_PRINTER

    def test_unreadable_printer_status_sends_nothing_and_fails_nothing(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner = PrintOwner(store, clock=clock)

        class Down(Printers):
            def printer_candidates(self) -> Sequence[PrinterCandidate]:
                raise PipelineError("server down")

        build = waiting_build(store, owner, clock)
        assert Dispatcher(store, Down(), Recorder(owner, Down())).dispatch_once() == ()
        assert store.get_build(build.id).state is JobState.WAITING_FOR_PRINTER


class TestReadiness:
    """The Web API feed answers while its budget lasts; the Local API devices otherwise."""

    def test_the_feed_is_used_within_the_budget_and_the_devices_answer_beyond_it(self) -> None:
        local, web = Printers("local-1"), Printers("web-1")
        budget = {"left": True}
        readiness = CombinedReadiness(local, web, lambda: budget["left"])
        assert [p.name for p in readiness.printer_candidates()] == ["web-1"]
        budget["left"] = False
        assert [p.name for p in readiness.printer_candidates()] == ["local-1"]
        assert (local.reads, web.reads) == (1, 1)

    def test_a_feed_that_fails_leaves_the_answer_to_the_devices(self) -> None:
        class Down(Printers):
            def printer_candidates(self) -> Sequence[PrinterCandidate]:
                raise PipelineError("feed down")

        readiness = CombinedReadiness(Printers("local-1"), Down(), lambda: True)
        assert [p.name for p in readiness.printer_candidates()] == ["local-1"]


class TestCancelWhileWaiting:
    """Cancelling a job of a waiting build takes the build back: its .form is never sent."""

    def test_the_build_leaves_the_queue_and_its_other_jobs_are_prepared_again(
        self, store: SqliteJobStore, clock: ManualClock
    ) -> None:
        owner = PrintOwner(store, clock=clock)
        jobs = [store.create_job(recipe="r", source_path=f"/in/{n}.stl",
                                 state=JobState.PROCESSING) for n in range(2)]
        build = store.create_build(recipe="r", job_ids=[j.id for j in jobs])
        store.transition_build(build.id, JobState.PREPARING, "preparing")
        store.transition_build(build.id, JobState.PREPARED, "prepared")
        owner.wait_for_printer(build.id, PrintTarget(auto=True).to_json(), job_name="x",
                               priority=0, describe="any")
        store.transition(jobs[0].id, JobState.CANCELLED, "cancelled by user")
        printers = Printers("A")
        send = Recorder(owner, printers)
        assert Dispatcher(store, printers, send, clock=clock).dispatch_once() == ()
        assert store.get_build(build.id).state is JobState.PROCESSING
        assert store.get_job(jobs[1].id).state is JobState.PROCESSING
