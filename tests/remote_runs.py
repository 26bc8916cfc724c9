"""``run`` of one sample model on one remote server, as the remote-url tests run it: a real
process, its settings file naming the remote alone (no local server, no wait for one down)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.command_line import in_a_process

__all__ = ["RemoteRun", "run_on_remote"]

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL = REPO_ROOT / "sample_models" / "parts" / "cube_with_hole.stl"
RECIPE = REPO_ROOT / "recipes" / "engineering-grey-form4.yaml"


@dataclass(frozen=True)
class RemoteRun:
    """What a run left: its exit code, both streams, and the folder it wrote to (all but its
    settings file, which holds the url)."""

    returncode: int
    said: str
    work: Path

    def events(self) -> list[dict[str, Any]]:
        """The events of its log file."""
        text = (self.work / "run.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]

    def files_with(self, secret: str) -> list[Path]:
        """The files it wrote that hold ``secret``."""
        return [p for p in self.work.rglob("*")
                if p.is_file() and secret.encode() in p.read_bytes()]


def run_on_remote(tmp_path: Path, url: str, **remote: str) -> RemoteRun:
    """``run`` of one model on the remote at ``url`` (its other settings ``remote``), one
    attempt; no traceback on either stream."""
    work = tmp_path / "work"
    work.mkdir()
    (work / MODEL.name).write_bytes(MODEL.read_bytes())
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({
        "servers": {"count": 0, "remote_wait_s": 0},
        "remotes": [{"url": url, **remote}],
    }), encoding="utf-8")
    done = in_a_process(work, "run", str(RECIPE), str(work / MODEL.name),
                        "--settings", str(settings), "--output", str(work / "out"),
                        "--store", str(work / "jobs.sqlite3"), "--max-attempts", "1",
                        "--log-file", str(work / "run.jsonl"),
                        env_extra={"HOME": str(tmp_path)})
    said = done.stdout + done.stderr
    assert "Traceback" not in said
    return RemoteRun(done.returncode, said, work)
