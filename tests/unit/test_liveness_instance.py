"""A process identity names its instance (boot and pid namespace) as well as its host, in
the line a printer claim's holder starts with, so a pid of another container with the same
host name is never judged here (real child processes; one in a new pid namespace made by
``unshare`` where the system allows it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from preform_pipeline.liveness import (
    CREATE_TIME_TOLERANCE_S,
    NO_INSTANCE,
    Liveness,
    ProcessIdentity,
    _hides_processes,  # the mounts' reading, on its own
    sees_every_process,
    this_host,
    this_instance,
)
from tests.instances import (
    child_environment,
    in_new_pid_namespace,
    other_instance,
    ours_running,
    quiet_moment,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAY_INSTANCE = "from preform_pipeline.liveness import this_instance; print(this_instance())"
#: A child that says who it is, as a claim's holder would, and runs until its input closes.
SAY_LABEL_AND_WAIT = ("import sys; from preform_pipeline.liveness import ProcessIdentity; "
                      "print(ProcessIdentity.current().label(), flush=True); sys.stdin.read()")
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux pid namespaces")


def _instance_of_child(*prefix: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([*prefix, sys.executable, "-c", SAY_INSTANCE], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


class TestThisInstance:
    """The boot and the pid namespace, the same for every process that shares our pids."""

    @LINUX
    def test_names_this_boot_and_pid_namespace(self) -> None:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        assert this_instance() == f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"

    def test_a_child_in_our_pid_namespace_has_ours(self) -> None:
        child = _instance_of_child()
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == this_instance()

    @LINUX
    def test_a_child_in_a_new_pid_namespace_has_another_of_the_same_boot(self) -> None:
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("this system does not let a test make a pid namespace (no unshare)")
        child = _instance_of_child(unshare, "--pid", "--fork", "--mount-proc")
        if child.returncode != 0:
            child = _instance_of_child(unshare, "--user", "--map-root-user", "--pid", "--fork",
                                       "--mount-proc")
        if child.returncode != 0:
            pytest.skip(f"this system does not let a test make a pid namespace: {child.stderr}")
        theirs = child.stdout.strip()
        assert theirs != this_instance()
        assert theirs.partition("/")[0] == this_instance().partition("/")[0]


class TestALabel:
    """``host:pid:start:instance``, read back as it was written; nothing else is a label."""

    def test_this_process_is_read_back_from_its_label(self) -> None:
        me = ProcessIdentity.current()
        assert me.instance == this_instance()
        again = ProcessIdentity.from_label(me.label())
        assert again is not None
        assert (again.host, again.pid, again.instance) == (me.host, me.pid, me.instance)
        assert abs(again.create_time - me.create_time) < 0.001
        assert again.on_this_host and again.is_running()

    def test_an_unknown_instance_is_written_as_a_dash(self) -> None:
        record = ProcessIdentity(pid=42, create_time=1_700_000_000.25, host="lab-pc")
        assert record.label() == "lab-pc:42:1700000000.250:-"
        again = ProcessIdentity.from_label(record.label())
        assert again == record and again is not None and again.instance == NO_INSTANCE
        if this_instance() != NO_INSTANCE:  # a system that names its instance: not ours
            assert not again.on_this_host

    @pytest.mark.parametrize("text", [
        "lab-pc:42:1700000000.250",  # an earlier version's: which pids it meant is unknown
        "lab-pc:42:1700000000.250:",
        "lab-pc:42:1700000000.250:boot/1:tag",
        "lab-pc:x:1700000000.250:boot/1",
        "lab-pc:42:soon:boot/1",
        ":42:1700000000.250:boot/1",
        "",
    ])
    def test_other_text_names_no_process(self, text: str) -> None:
        assert ProcessIdentity.from_label(text) is None


class TestAChildOfOurs:
    """Its label, as it writes it, names a process running here until it ends."""

    def test_runs_while_it_runs_and_has_ended_after(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        child = subprocess.Popen([sys.executable, "-c", SAY_LABEL_AND_WAIT], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdin is not None
            said = ProcessIdentity.from_label(child.stdout.readline().strip())
            assert said is not None and said.pid == child.pid
            assert said.on_this_host and said.is_running() and not said.has_ended()
            running = ProcessIdentity.of_running(child.pid)
            assert running is not None and running.matches(said)
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(30)
        assert said.has_ended() and ProcessIdentity.of_running(child.pid) is None


class TestAnotherInstance:
    """Our host name, another instance: another host, whose pids say nothing here."""

    def test_is_not_this_host_and_never_known_to_have_ended(self) -> None:
        me = ProcessIdentity.current()
        there = ProcessIdentity(me.pid, me.create_time - 100.0, me.host, f"{me.instance}x")
        assert not there.on_this_host
        assert not there.is_running()
        assert not there.has_ended()

    def test_a_record_that_does_not_say_is_judged_by_its_host_as_before(self) -> None:
        me = ProcessIdentity.current()
        written = {k: v for k, v in me.to_json().items() if k != "instance"}
        record = ProcessIdentity.from_json(written)  # a daemon lock, a server record of before
        assert record.instance is None
        assert record.on_this_host and record.is_running()
        gone = ProcessIdentity(me.pid, me.create_time - 100.0, this_host())
        assert gone.on_this_host and gone.has_ended()


class TestJudgedOnThisMachine:
    """A record kept on this machine's disk: ours by pid, an earlier boot's ended, another
    container's (or host's, or an instance that cannot be compared) not ours to judge."""

    def test_each_kind_of_holder(self) -> None:
        me = ProcessIdentity.current()
        gone = me.create_time - 100.0
        table = {
            "this process": (me, Liveness.RUNNING),
            "ours, ended": (ProcessIdentity(me.pid, gone, me.host, this_instance()),
                            Liveness.ENDED),
            "a record of before": (ProcessIdentity(me.pid, me.create_time, me.host),
                                   Liveness.RUNNING),
            "another container": (ProcessIdentity(me.pid, me.create_time, me.host,
                                                  other_instance()), Liveness.UNKNOWN),
            "an earlier boot": (ProcessIdentity(me.pid, me.create_time, me.host,
                                                other_instance(boot=True)), Liveness.ENDED),
            "another host's other boot": (ProcessIdentity(me.pid, gone, f"{me.host}x",
                                                          other_instance(boot=True)),
                                          Liveness.UNKNOWN),
            "an instance not known": (ProcessIdentity(me.pid, gone, me.host, NO_INSTANCE),
                                      Liveness.ENDED if this_instance() == NO_INSTANCE
                                      else Liveness.UNKNOWN),
        }
        assert {k: p.judged_on_this_machine() for k, (p, _) in table.items()} == {
            k: v for k, (_, v) in table.items()}

    def test_a_record_that_names_no_instance_is_ended_only_when_that_is_proven(self) -> None:
        # An earlier version's record: running here, it is ours; started before this boot, it
        # ended; started at a moment no running process started at, it ended where this
        # process sees every process of the machine; otherwise its pid may be another
        # container's (where instances are named).
        me = ProcessIdentity.current()
        after_boot = ProcessIdentity(me.pid, quiet_moment(), me.host)
        before_boot = ProcessIdentity(me.pid, psutil.boot_time() - 3600.0, me.host)
        assert (after_boot.started_before_this_boot(), before_boot.started_before_this_boot(),
                me.started_before_this_boot()) == (False, True, False)
        assert after_boot.judged_on_this_machine() is (
            Liveness.ENDED if this_instance() == NO_INSTANCE or sees_every_process()
            else Liveness.UNKNOWN)
        assert before_boot.judged_on_this_machine() is Liveness.ENDED
        assert ProcessIdentity(me.pid, me.create_time, me.host).judged_on_this_machine() is (
            Liveness.RUNNING)

    def test_the_boot_time_is_read_to_the_second(self) -> None:
        # psutil's boot time comes in whole seconds: a process of this boot may seem to have
        # started up to a second before it, and must not be taken for one of an earlier boot.
        me = ProcessIdentity.current()
        at_boot = ProcessIdentity(me.pid, psutil.boot_time() - 0.99, me.host)
        assert at_boot.started_before_this_boot() is False

    @LINUX
    def test_a_start_a_whole_second_before_the_boot_is_still_this_boot_s(self) -> None:
        # Linux keeps the boot time in whole seconds (btime): the margin's edge is exact.
        me = ProcessIdentity.current()
        edge = ProcessIdentity(me.pid, psutil.boot_time() - 1.0, me.host)
        assert edge.started_before_this_boot() is False

    @LINUX
    def test_a_system_that_names_no_boot_judges_no_other_boot(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        me = ProcessIdentity.current()
        before = ProcessIdentity(me.pid, me.create_time, me.host, other_instance(boot=True))
        monkeypatch.setattr("preform_pipeline.liveness.this_instance", lambda: NO_INSTANCE)
        assert before.judged_on_this_machine() is Liveness.UNKNOWN


#: A child that judges an earlier version's record (argv: pid, start) and says the verdict.
JUDGE = ("import sys; from preform_pipeline.liveness import ProcessIdentity, this_host; "
         "print(ProcessIdentity(int(sys.argv[1]), float(sys.argv[2]), this_host())"
         ".judged_on_this_machine().value)")


class TestHowProcIsMounted:
    """/proc's ``hidepid`` hides other users' processes: then not every process is seen."""

    @pytest.mark.parametrize(("options", "hides"), [
        ("rw,relatime", False), ("rw,nosuid,hidepid=0", False), ("rw,hidepid=off", False),
        ("rw,hidepid=2,gid=7", True), ("rw,relatime,hidepid=invisible", True),
        ("rw,hidepid=1", True)])
    def test_hidepid_is_read_from_the_proc_line(self, options: str, hides: bool) -> None:
        mounts = (f"sysfs /sys sysfs rw,hidepid=2 0 0\nproc /proc proc {options} 0 0\n"
                  "tmpfs /run tmpfs rw 0 0\n")
        assert _hides_processes(mounts) is hides

    def test_a_proc_mounted_over_the_first_is_the_one_read(self) -> None:
        # systemd's ProtectProc=invisible mounts a /proc with hidepid over the machine's: the
        # later line is what this process sees, so processes are hidden.
        mounts = ("proc /proc proc rw,nosuid,relatime 0 0\n"
                  "proc /proc proc rw,nosuid,relatime,hidepid=invisible 0 0\n")
        assert _hides_processes(mounts) is True

    def test_a_proc_not_listed_may_hide_them(self) -> None:
        assert _hides_processes("sysfs /sys sysfs rw 0 0\nbroken line\n") is True

    @pytest.mark.skipif(not sees_every_process(), reason="needs the machine's own pid namespace")
    @pytest.mark.parametrize(("mounts", "sees"), [
        (None, False), ("proc /proc proc rw,hidepid=2 0 0\n", False),
        ("proc /proc proc rw,relatime 0 0\n", True)], ids=["unreadable", "hidden", "plain"])
    def test_what_the_mounts_file_says_decides(
        self, monkeypatch: pytest.MonkeyPatch, mounts: str | None, sees: bool
    ) -> None:
        real = Path.read_text

        def read(path: Path, *args: object, **kwargs: object) -> str:
            if str(path) != "/proc/self/mounts":
                return real(path, *args, **kwargs)  # type: ignore[arg-type]
            if mounts is None:
                raise PermissionError(13, "Permission denied", str(path))
            return mounts

        monkeypatch.setattr(Path, "read_text", read)
        assert sees_every_process() is sees


class TestARecordOfAnEarlierVersion:
    """Naming no instance, it has ended only where that is proven: this process sees every
    process of the machine (its own pid namespace) and none that may be ours started at the
    record's moment (session 34)."""

    @pytest.mark.skipif(not sees_every_process(), reason="needs the machine's own pid namespace")
    @pytest.mark.timeout(60)
    def test_look_alikes_are_the_processes_of_ours_started_at_its_moment(self) -> None:
        with ours_running() as ours, ours_running(ours=False) as other:
            for child, alike in ((ours, (ours.pid,)), (other, ())):
                running = ProcessIdentity.of_running(child.pid)
                assert running is not None
                record = ProcessIdentity(1, running.create_time, this_host())
                assert record.look_alikes() == alike
                assert record.judged_on_this_machine() is (
                    Liveness.UNKNOWN if alike else Liveness.ENDED)
        assert ProcessIdentity(1, quiet_moment(), this_host()).look_alikes() == ()

    @pytest.mark.skipif(not sees_every_process(), reason="needs the machine's own pid namespace")
    @pytest.mark.timeout(60)
    def test_ours_under_its_pid_is_a_look_alike_whatever_its_start(self) -> None:
        # The clock set since the holder started moves the boot's time, so its start reads
        # back a second (or more) off: a process of ours under the record's pid may be it.
        # The record's start is a moment at which nothing started (a second before ours could
        # be another worker's simulator's start, a look-alike by its start too).
        with ours_running() as ours:
            record = ProcessIdentity(ours.pid, quiet_moment(), this_host())
            assert not record.is_running()
            assert record.look_alikes() == (ours.pid,)
            assert record.judged_on_this_machine() is Liveness.UNKNOWN

    @LINUX
    @pytest.mark.timeout(60)
    def test_inside_a_container_nothing_is_ruled_out(self) -> None:
        # Inside a pid namespace of its own a process sees only its container: the other
        # containers' processes, an earlier version's daemon among them, are not there.
        prefix = in_new_pid_namespace()
        if prefix is None:
            pytest.skip("this system does not let a test make a pid namespace (unshare)")
        judged = subprocess.run(
            [*prefix, sys.executable, "-c", JUDGE, "4242", repr(quiet_moment())],
            capture_output=True, text=True, timeout=60, env=child_environment(), check=False)
        assert judged.returncode == 0, judged.stderr
        assert judged.stdout.strip() == Liveness.UNKNOWN.value


class TestInstanceInJson:
    """A record says its instance, read back; one that says a wrong one is not a record."""

    def test_round_trip(self) -> None:
        me = ProcessIdentity.current()
        read = ProcessIdentity.from_json(me.to_json())
        assert (read, read.instance) == (me, this_instance())

    @pytest.mark.parametrize("instance", ["", 7, ["boot"]])
    def test_a_wrong_instance_is_refused(self, instance: object) -> None:
        with pytest.raises(ValueError, match="not an instance"):
            ProcessIdentity.from_json({"pid": 1, "create_time": 1.0, "host": "h",
                                       "instance": instance})

    def test_processes_of_two_instances_never_match(self) -> None:
        me = ProcessIdentity.current()
        there = ProcessIdentity(me.pid, me.create_time, me.host, other_instance())
        assert not me.matches(there) and not there.matches(me)
        assert me.matches(ProcessIdentity(me.pid, me.create_time, me.host))


class TestARecordThatIsNotOne:
    """Each field that does not fit is refused, said as what it is not."""

    @pytest.mark.parametrize(("field", "value", "said"), [
        ("pid", True, "not a process id: True"),
        ("pid", 0, "not a process id: 0"),
        ("create_time", True, "not a start time: True"),
        ("create_time", "1.0", "not a start time: '1.0'"),
        ("host", "", "not a host name: ''"),
        ("host", 7, "not a host name: 7"),
    ])
    def test_the_field_is_named(self, field: str, value: object, said: str) -> None:
        record = {"pid": 1, "create_time": 1.0, "host": "h", field: value}
        with pytest.raises(ValueError) as caught:
            ProcessIdentity.from_json(record)
        assert str(caught.value) == said

    def test_start_times_that_far_apart_are_one_process_and_no_further(self) -> None:
        here = ProcessIdentity(7, 0.0, "h")
        assert here.matches(ProcessIdentity(7, CREATE_TIME_TOLERANCE_S, "h"))
        assert not here.matches(ProcessIdentity(7, CREATE_TIME_TOLERANCE_S * 2, "h"))
