"""Run reports: what every build did, as JSON (for tools) and CSV (for spreadsheets).

One row per build: build, models, source files, material volume, estimated print time,
status, the full reason, job id, server, attempts, the files written, the verification
outcome, the printer, job name and job key the print was sent with, the case ids, the
warnings, and whether it was held or left waiting (``held``, ``waiting``: the CSV's last
columns); plus one row per model refused up front (status ``rejected``, with its size). The
JSON report adds the run: id, recipe, ``simulated`` (true whenever the built-in simulator
stood in for PreFormServer), dry run, interrupted, wall time (verification included), the
builds counted by status (``counts``) and as the console counts them (``tally``: held and
waiting apart from succeeded), and per build its steps and attempts.

Each build also gets a small JSON report of its own at the recipe's ``outputs.report`` path
(:func:`write_build_report`), written as soon as the build finishes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from preform_pipeline import __version__
from preform_pipeline.atomicfile import write_atomically, write_text_atomically
from preform_pipeline.executor.outputs import claim_output, companion_output, release_output
from preform_pipeline.executor.report_beside import BUILD_REPORT_FORMAT
from preform_pipeline.executor.state import BuildOutcome, RunResult
from preform_pipeline.plan.rejection import Rejection
from preform_pipeline.recipes.templates import render_output_path
from preform_pipeline.wording import millimetres, visible

__all__ = [
    "SLS_COLUMNS",
    "CSV_COLUMNS",
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "build_to_dict",
    "csv_rows",
    "rejection_to_dict",
    "result_to_dict",
    "write_build_report",
    "write_csv_report",
    "write_json_report",
    "write_run_report",
]

REPORT_FORMAT: Final = "preform-pipeline-run-report"
REPORT_VERSION: Final = 1

#: SLS builds' figures (empty for resin builds), as CSV columns and JSON keys under "sls".
SLS_COLUMNS: Final[tuple[str, ...]] = (
    "packing_density",
    "mass_packing_density",
    "total_powder_ml",
    "total_powder_kg",
    "sintered_powder_ml",
    "sintered_powder_kg",
    "cool_to_removal_s",
    "cool_to_room_temperature_s",
)

#: Columns of the CSV report, in order. Lists (models, files) are joined with ``;``.
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "build",
    "status",
    "reason",
    "models",
    "source_files",
    "material_ml",
    "estimated_print_time_s",
    "job_id",
    "server",
    "attempts",
    "layout_calls",
    "estimated_volume_ml",
    "parent",
    "outputs",
    "simulated",
    "dry_run",
    "verify",
    "verify_message",
    "printer",
    "job_name",
    "job_key",
    "case_ids",
    "warnings",
    "units",
    *SLS_COLUMNS,
    # Added last, so a reader that takes the columns by position still finds the others:
    # a held or waiting build's status is "succeeded", though nothing was sent.
    "held",
    "waiting",
)

_LIST_SEPARATOR: Final = ";"


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def build_to_dict(outcome: BuildOutcome) -> dict[str, Any]:
    """One build as JSON-compatible data."""
    return {
        "build": outcome.name,
        "index": outcome.index,
        "status": outcome.status.value,
        "reason": outcome.reason,
        "models": list(outcome.models),
        "source_files": list(outcome.source_files),
        "material_ml": _round(outcome.material_ml),
        "estimated_print_time_s": _round(outcome.print_time_s, 1),
        "job_id": outcome.job_id,
        "server": outcome.server,
        "attempts": len(outcome.attempts),
        "attempt_details": [
            {
                "number": a.number,
                "server": a.server,
                "busy_s": round(a.busy_s, 3),
                "error": a.error,
                "error_type": a.error_type,
                "resumed_from": a.resumed_from,
            }
            for a in outcome.attempts
        ],
        "steps_done": list(outcome.steps_done),
        "outputs": [str(p) for p in outcome.outputs],
        "warnings": list(outcome.warnings),
        "parent": outcome.parent,
        "children": list(outcome.children),
        "layout_calls": outcome.layout_calls,
        "estimated_volume_ml": _round(outcome.estimated_volume_ml),
        "verify": outcome.verify,
        "verify_message": outcome.verify_message,
        "dry_run": outcome.dry_run,
        "duration_s": round(outcome.duration_s, 3),
        "printer": outcome.printer,
        "job_name": outcome.job_name,
        "job_key": outcome.job_key,
        # Prepared and not sent (its status is "succeeded"): held for an operator's approval,
        # or left waiting in the job store for a free printer; the dispatch loop sends it.
        "held": outcome.held,
        "waiting": outcome.waiting,
        "case_ids": list(outcome.case_ids),
        "dropped": [{"file": f, "reason": r} for f, r in outcome.dropped],
        "units": list(outcome.units),
        "sls": (
            {k: round(v, 4) for k, v in outcome.sls.items()} if outcome.sls is not None else None
        ),
    }


def rejection_to_dict(rejection: Rejection) -> dict[str, Any]:
    return {
        "path": str(rejection.path),
        "reason": rejection.reason,
        "size_mm": [round(v, 3) for v in rejection.size_mm] if rejection.size_mm else None,
        "build_volume_mm": list(rejection.build_volume_mm) if rejection.build_volume_mm else None,
        # A file that is no model (a PNG named .stl): what its bytes show, as the event says.
        "not_a_model": rejection.not_a_model,
        "looks_like": rejection.looks_like,
    }


def result_to_dict(result: RunResult, *, ok: bool | None = None) -> dict[str, Any]:
    """The whole run as JSON-compatible data (what the JSON report holds).

    ``ok``: the run's verdict when its caller judged it (``run``: its exit status was 0);
    else the builds' own (:attr:`RunResult.ok`)."""
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generator": f"preform-pipeline {__version__}",
        "run_id": result.run_id,
        "recipe": result.recipe,
        "simulated": result.simulated,
        "dry_run": result.dry_run,
        "interrupted": result.cancelled,
        "ok": result.ok if ok is None else ok,
        "pool_mode": result.pool_mode,
        "servers": result.server_count,
        "wall_s": round(result.wall_s, 3),
        "output_root": str(result.output_root) if result.output_root else None,
        "counts": counts,
        # The counts the console's closing and exit lines say (held and waiting apart from
        # succeeded, splits left out); "counts" above stays by status, as scripts read it.
        "tally": result.tally.to_dict(),
        "builds": [build_to_dict(o) for o in result.outcomes],
        "rejected": [rejection_to_dict(r) for r in result.rejected],
        "warnings": list(result.warnings),
        "verification": dict(result.verification) if result.verification is not None else None,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return _LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def csv_rows(result: RunResult) -> list[dict[str, str]]:
    """The CSV report's rows: builds, then rejected models."""
    rows: list[dict[str, str]] = []
    for outcome in result.outcomes:
        data = build_to_dict(outcome)
        data["simulated"] = result.simulated
        data.update({k: (data["sls"] or {}).get(k) for k in SLS_COLUMNS})
        rows.append({column: _cell(data.get(column)) for column in CSV_COLUMNS})
    for rejection in result.rejected:
        size = millimetres(rejection.size_mm) if rejection.size_mm else ""
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(
            build="",
            status="rejected",
            # A rejected name may hold what no text file can (a name that is not UTF-8).
            reason=visible(rejection.reason + (f" (size {size})" if size else "")),
            models=visible(rejection.path.name),
            source_files=visible(str(rejection.path)),
            simulated=_cell(result.simulated),
            dry_run=_cell(result.dry_run),
        )
        rows.append(row)
    return rows


def write_json_report(result: RunResult, path: Path, *, ok: bool | None = None) -> Path:
    """The run's JSON report at ``path``, written whole or not at all (FileWriteError);
    ``ok`` as :func:`result_to_dict` takes it."""
    return write_text_atomically(
        path, json.dumps(result_to_dict(result, ok=ok), indent=2) + "\n")


def write_csv_report(result: RunResult, path: Path) -> Path:
    """The run's CSV report at ``path``, written whole or not at all (FileWriteError)."""

    def write(temporary: Path) -> None:
        with temporary.open("w", encoding="utf-8", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(CSV_COLUMNS))
            writer.writeheader()
            writer.writerows(csv_rows(result))

    return write_atomically(path, write)


def write_run_report(
    result: RunResult, folder: Path, *, ok: bool | None = None
) -> tuple[Path, Path]:
    """``<folder>/<run id>.json`` and ``.csv``; returns both paths. ``ok``: the run's verdict
    as its caller judged it (:func:`result_to_dict`)."""
    json_path = write_json_report(result, folder / f"{result.run_id}.json", ok=ok)
    csv_path = write_csv_report(result, folder / f"{result.run_id}.csv")
    return json_path, csv_path


def write_build_report(
    outcome: BuildOutcome,
    template: str,
    values: Mapping[str, object],
    root: Path,
    *,
    run_id: str,
) -> Path:
    """One build's report at ``template`` (the recipe's ``outputs.report``) below ``root``,
    beside its ``.form`` by name (the same ``-N``), never over an earlier run's report: build
    names start again at ``-001`` every run, so a second run of the day renders the first's
    report path."""
    path = render_output_path(template, values, root)
    if outcome.saved_form is not None:
        path = companion_output(path, outcome.saved_form)
    path = claim_output(path)
    data = {"format": BUILD_REPORT_FORMAT, "run_id": run_id, **build_to_dict(outcome),
            # The scene's machine and material (an .fps scene's as the server reported it):
            # the dashboard shows them for builds that never waited with a print target.
            "machine_type": str(values.get("machine") or "") or None,
            "material": str(values.get("material") or "") or None}
    try:
        write_text_atomically(path, json.dumps(data, indent=2) + "\n")
    except BaseException:
        release_output(path)  # an empty claimed name would read as a report
        raise
    return path
