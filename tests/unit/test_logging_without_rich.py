"""structlog is imported with rich hidden (``preform_pipeline/thirdparty.py``): a process that
logs does not import rich for it, and its console and JSON lines are what they were when
structlog saw rich."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

TIMEOUT_S = 60.0

#: Logs a few events and an exception through the package's own setup and prints what reached
#: the console and the JSON log. With ``saw-rich`` it imports structlog first, as it would be
#: without thirdparty.py (which then leaves it as it found it): the same script either way, so
#: that the exception's frames have the same lines.
CHILD = r"""
import io, json, sys
from pathlib import Path
if sys.argv[1] == "saw-rich": import structlog
from preform_pipeline.logging import configure_logging, get_logger
rich_at_start = "rich" in sys.modules
console = io.StringIO()
configure_logging(level="DEBUG", json_file=Path(sys.argv[2]), console=console)
log = get_logger("preform_pipeline.trial")
log.info("job_started", path="C:\\parts\\a b.stl", count=3, ratio=0.5, names=["a", "b"],
         nested={"token": "x", "n": None}, password="hunter2", name="bell\x07")
log.warning("slow", seconds=12.5)
try:
    {}["missing"]
except KeyError:
    try:
        raise ValueError("bad value, Bearer abc.def") from None
    except ValueError:
        log.exception("step_failed", step="slice")
import structlog.dev
from rich.console import Console  # our own consoles still have rich
printed = io.StringIO()
Console(file=printed, width=40).print("[bold]done[/bold]")
print(json.dumps({"console": console.getvalue(), "json": Path(sys.argv[2]).read_text(),
                  "rich_at_start": rich_at_start,
                  "structlog_saw_rich": structlog.dev.rich is not None,
                  "printed": printed.getvalue()}))
"""

#: An ISO timestamp as the events carry it: the one thing two runs differ in.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def logged(mode: str, tmp_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(tmp_path / f"{mode}.jsonl")], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=TIMEOUT_S,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    for key in ("console", "json"):
        answer[key] = _TIMESTAMP.sub("<timestamp>", answer[key])
    return answer


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """What each way logged: structlog imported by the package, and by someone before it."""
    folder = tmp_path_factory.mktemp("richless")
    return {mode: logged(mode, folder) for mode in ("package", "saw-rich")}


class TestStructlogWithoutRich:
    """A process that logs imports no rich for structlog, and its lines are unchanged."""

    def test_logging_imports_no_rich(self, both: dict[str, dict[str, Any]]) -> None:
        assert both["package"]["rich_at_start"] is False
        assert both["package"]["structlog_saw_rich"] is False
        # The comparison below is between two different structlogs, not one twice.
        assert both["saw-rich"]["structlog_saw_rich"] is True

    def test_the_console_lines_are_the_same(self, both: dict[str, dict[str, Any]]) -> None:
        package, saw_rich = both["package"]["console"], both["saw-rich"]["console"]
        assert package == saw_rich
        # What was compared: the events, values as written, the exception without frames.
        assert 'path="C:\\parts\\a b.stl"' in package
        assert "ValueError: bad value, Bearer [redacted]" in package
        assert "Traceback" not in package

    def test_the_json_lines_are_the_same(self, both: dict[str, dict[str, Any]]) -> None:
        package, saw_rich = both["package"]["json"], both["saw-rich"]["json"]
        assert package == saw_rich
        failed = json.loads(package.splitlines()[-1])
        assert failed["exception"][0]["exc_type"] == "ValueError"
        assert failed["exception"][0]["frames"]

    def test_rich_is_there_afterwards_for_our_consoles(
        self, both: dict[str, dict[str, Any]]
    ) -> None:
        assert both["package"]["printed"] == both["saw-rich"]["printed"] == "done\n"
