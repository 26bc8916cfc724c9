"""The Dashboard simulator's command line: flags, credentials, start-up lines, exit statuses."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.simulator.cli import LISTENING_PATTERN, READY_LINE
from preform_pipeline.simulator.cloud.cli import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ENV_SIM_CLIENT_ID,
    ENV_SIM_CLIENT_SECRET,
    parse_args,
    resolve_credentials,
    run,
)

WAIT_S = 10.0
SECRET = "hunter2-s3cr3t"


class _Lines(io.StringIO):
    """stdout that tells a waiting test when READY FOR INPUT was written."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if READY_LINE in self.getvalue():
            self.ready.set()
        return written


class TestCredentials:
    """Each credential comes from its flag, else the environment, else a default."""

    def test_flags_win_over_the_environment(self, tmp_path: Path) -> None:
        secret_file = tmp_path / "secret.txt"
        secret_file.write_text("from-file\n", encoding="utf-8")
        config = parse_args(["--client-id", "flag-id", "--client-secret-file", str(secret_file)])

        found = resolve_credentials(
            config, {ENV_SIM_CLIENT_ID: "env-id", ENV_SIM_CLIENT_SECRET: "env-secret"}
        )

        assert found == ("flag-id", "from-file", False)

    def test_the_environment_wins_over_the_defaults(self) -> None:
        found = resolve_credentials(
            parse_args([]), {ENV_SIM_CLIENT_ID: "env-id", ENV_SIM_CLIENT_SECRET: "env-secret"}
        )

        assert found == ("env-id", "env-secret", False)

    def test_without_either_the_defaults_are_used_and_said_so(self) -> None:
        assert resolve_credentials(parse_args([]), {}) == (
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            True,
        )

    def test_an_empty_secret_file_is_refused(self, tmp_path: Path) -> None:
        empty = tmp_path / "empty"
        empty.write_text("", encoding="utf-8")

        with pytest.raises(ConfigError, match="empty"):
            resolve_credentials(parse_args(["--client-secret-file", str(empty)]), {})


class TestRun:
    """run() prints the start-up lines, serves until stopped, and fails with the right status."""

    def test_it_serves_until_told_to_stop(self, tmp_path: Path) -> None:
        stdout, stderr = _Lines(), io.StringIO()
        stop = threading.Event()
        codes: list[int] = []
        argv = ["--port", "0", "--fleet-dir", str(tmp_path / "fleet")]
        worker = threading.Thread(
            target=lambda: codes.append(run(argv, stdout, stderr, environ={}, stop=stop))
        )
        worker.start()
        try:
            assert stdout.ready.wait(WAIT_S), stderr.getvalue()
            found = LISTENING_PATTERN.search(stdout.getvalue())
            assert found is not None
            answer = httpx.get(f"http://127.0.0.1:{found.group(1)}/developer/v1/printers/")
        finally:
            stop.set()
            worker.join(WAIT_S)

        assert answer.status_code == 401
        assert codes == [0]
        lines = stdout.getvalue().splitlines()
        assert lines[0].startswith("Dashboard simulator (preform-pipeline ")
        assert lines[-1] == READY_LINE
        assert f"Client id: {DEFAULT_CLIENT_ID}" in lines
        assert DEFAULT_CLIENT_SECRET not in stdout.getvalue() + stderr.getvalue()

    @pytest.mark.parametrize(
        "argv",
        [
            ["--time-scale", "-1"],
            ["--token-lifetime", "0"],
            ["--hourly-limit", "many"],
            ["--port", "70000"],
        ],
    )
    def test_a_bad_flag_is_a_usage_error(self, argv: list[str]) -> None:
        assert run(argv, io.StringIO(), io.StringIO(), environ={}) == 2

    def test_a_broken_outcomes_file_is_a_usage_error_naming_it(self, tmp_path: Path) -> None:
        outcomes = tmp_path / "outcomes.yaml"
        outcomes.write_text("jobs: [{name: x, outcome: MELTED}]\n", encoding="utf-8")
        stderr = io.StringIO()

        code = run(["--outcomes", str(outcomes)], io.StringIO(), stderr, environ={})

        assert code == 2
        assert str(outcomes) in stderr.getvalue()
        assert "MELTED" in stderr.getvalue()

    def test_a_missing_secret_file_is_a_usage_error(self, tmp_path: Path) -> None:
        argv = ["--client-secret-file", str(tmp_path / "absent")]

        assert run(argv, io.StringIO(), io.StringIO(), environ={}) == 2


class TestASecretTypedWhereItsFileBelongs:
    """``--client-secret-file hunter2`` was said back: "error: hunter2: cannot read the client
    secret: [Errno 2] No such file or directory: 'hunter2'"."""

    def test_it_is_said_by_its_length_and_folder_not_repeated(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        stderr, log = io.StringIO(), tmp_path / "sim.log"

        code = run(["--client-secret-file", SECRET, "--log-file", str(log)], io.StringIO(),
                   stderr, environ={})

        said = stderr.getvalue() + (log.read_text(encoding="utf-8") if log.exists() else "")
        assert code == 2
        assert SECRET not in said
        assert said.startswith(
            f"error: --client-secret-file: cannot read the client secret from the name given "
            f"({len(SECRET)} characters, not repeated here")
        assert f"looked for below {tmp_path}): No such file or directory" in said

    def test_a_mistyped_path_is_named_as_typed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "secrets").mkdir()
        stderr = io.StringIO()

        assert run(["--client-secret-file", "secrets/clinet"], io.StringIO(), stderr,
                   environ={}) == 2
        assert stderr.getvalue().startswith(
            "error: --client-secret-file: cannot read the client secret from secrets/clinet: "
            "No such file or directory")

    @pytest.mark.parametrize("typed", [
        "~hunter2-s3cr3t", "~/Hunter2-s3cr3t", "hunter2-s3cr3t.txt", "secrets/hunter2+s3cr3t=",
    ], ids=["tilde", "tilde-slash", "txt", "in-a-folder-that-is-there"])
    def test_a_secret_shaped_like_a_path_is_not_said_back(
        self, typed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("HOME", str(tmp_path))
        (tmp_path / "secrets").mkdir()
        stderr, log = io.StringIO(), tmp_path / "sim.log"

        code = run(["--client-secret-file", typed, "--log-file", str(log)], io.StringIO(),
                   stderr, environ={})

        # argparse says a refused option's value on the process's own stderr.
        said = stderr.getvalue() + capsys.readouterr().err + (
            log.read_text(encoding="utf-8") if log.exists() else "")
        assert code == 2
        assert "hunter2" not in said.lower()
        assert " characters, not repeated here" in said

    def test_a_file_that_is_not_text_is_said_without_its_bytes(self, tmp_path: Path) -> None:
        secret_file = tmp_path / "secret.txt"
        secret_file.write_bytes(b"s3cr\xe9t")  # Latin-1, as an old editor saves it
        stderr = io.StringIO()

        assert run(["--client-secret-file", str(secret_file)], io.StringIO(), stderr,
                   environ={}) == 2
        assert "it is not UTF-8 text" in stderr.getvalue()
        assert "0xe9" not in stderr.getvalue()


class TestPrintHistory:
    """Printers start with a finished past print; --no-print-history starts them never-printed."""

    @pytest.mark.parametrize(
        ("flags", "current"), [([], "FINISHED"), (["--no-print-history"], None)]
    )
    def test_the_flag_decides_what_a_fresh_printer_reports(
        self, tmp_path: Path, flags: list[str], current: str | None
    ) -> None:
        stdout, stderr = _Lines(), io.StringIO()
        stop = threading.Event()
        argv = ["--port", "0", "--fleet-dir", str(tmp_path / "fleet"), *flags]
        worker = threading.Thread(target=run, args=(argv, stdout, stderr),
                                  kwargs={"environ": {}, "stop": stop})
        worker.start()
        try:
            assert stdout.ready.wait(WAIT_S), stderr.getvalue()
            found = LISTENING_PATTERN.search(stdout.getvalue())
            assert found is not None
            api = f"http://127.0.0.1:{found.group(1)}/developer/v1"
            token = httpx.post(f"{api}/o/token/", data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
            }).json()["access_token"]
            printers = httpx.get(
                f"{api}/printers/", headers={"Authorization": f"Bearer {token}"}
            ).json()
        finally:
            stop.set()
            worker.join(WAIT_S)

        runs = [p["printer_status"]["current_print_run"] for p in printers]
        assert runs
        assert {None if r is None else r["status"] for r in runs} == {current}
        assert parse_args(flags).print_history is (current is not None)
