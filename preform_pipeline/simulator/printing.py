"""Sending a scene to a simulated printer or Fleet Control queue, and listing devices.

A print is accepted when the scene has models, all of them inside the build volume, and the
target prints the scene's machine type; printing to a Fleet Control queue needs a login. The
job is written to the fleet directory (:meth:`.fleet.FleetState.record_job`) with what the
Dashboard simulator needs: target, scene settings, layer count, volume, estimated time.
"""

from __future__ import annotations

import difflib
import hashlib
import uuid
from dataclasses import replace
from datetime import datetime, timezone

from preform_pipeline.catalogue import Catalogue
from preform_pipeline.wording import counted, noun

from .devices import group_status, printer_status
from .fleet import FleetState, SimGroup, SimPrinter, utc_now_iso
from .protocol import Json, SimError
from .scene import Scene

__all__ = ["device_bodies", "find_target", "job_record", "live_printers"]


def live_printers(fleet: FleetState, print_time_scale: float) -> list[SimPrinter]:
    """The fleet's printers as they are now: one still printing a job (its estimated print time
    times ``print_time_scale`` after it started) is PRINTING and not ready to print."""
    ends = fleet.busy_until(print_time_scale)
    now = datetime.now(timezone.utc)
    live = []
    for printer in fleet.printers():
        end = ends.get(printer.serial)
        if end is not None and end > now and printer.status != "OFFLINE":
            left_ms = int((end - now).total_seconds() * 1000)
            printer = replace(printer, status="PRINTING", ready_to_print_now=False,
                              estimated_print_time_remaining_ms=max(left_ms, 1))
        live.append(printer)
    return live


def device_bodies(
    fleet: FleetState, *, include_groups: bool, print_time_scale: float = 0.0
) -> list[Json]:
    """DeviceStatusModel bodies of every printer, and of every group when ``include_groups``
    (Fleet Control queues are visible to a logged-in user only)."""
    printers = live_printers(fleet, print_time_scale)
    bodies = [printer_status(p) for p in printers]
    if include_groups:
        by_serial = {p.serial: p for p in printers}
        for group in fleet.groups():
            members = [by_serial[s] for s in group.printers if s in by_serial]
            bodies.append(group_status(group, members))
    return bodies


def find_target(
    fleet: FleetState, name: str, *, logged_in: bool, print_time_scale: float = 0.0
) -> SimPrinter | SimGroup:
    """The printer (serial or IP) or Fleet Control queue (group or queue id) called ``name``,
    a printer as it is now (:func:`live_printers`)."""
    target = fleet.find(name)
    if isinstance(target, SimPrinter):
        target = next(
            p for p in live_printers(fleet, print_time_scale) if p.serial == target.serial
        )
    if target is None:
        known = [p.serial for p in fleet.printers()]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        active = ""
        if fleet.is_declared():
            # Say whose printers these are: a name of the default fleet missing here means a
            # rehearsal's declared fleet is active in this folder, not that the recipe is wrong.
            active = (
                f" (the declared fleet in {fleet.root}, from --fleet-printers or the settings'"
                " simulator.fleet: add the printer there, or start the simulator without a"
                " declared fleet to get the default printers back)"
            )
        raise SimError(
            400,
            "PRINTER_NOT_FOUND",
            f"no printer or Fleet Control queue {name!r}; {hint}known printers: "
            + ", ".join(known) + active,
        )
    if isinstance(target, SimGroup) and not logged_in:
        raise SimError(
            400,
            "NOT_LOGGED_IN",
            f"printing to Fleet Control queue {name!r} needs a Dashboard login; POST /login/ first",
        )
    return target


def job_record(
    scene: Scene,
    catalogue: Catalogue,
    fleet: FleetState,
    target: SimPrinter | SimGroup,
    *,
    job_name: str,
    print_now: bool | None,
) -> Json:
    """The job file's content, after checking that ``target`` can print ``scene``."""
    # Here, not at the top: the device list (GET /devices/) needs no geometry, and a
    # simulator reaches READY FOR INPUT without numpy (engine.py).
    from . import estimates

    machine = scene.settings.machine(catalogue)
    if not scene.models:
        raise SimError(400, "EMPTY_SCENE", f"scene {scene.id} has no models to print")
    volume = machine.build_volume_mm
    outside = [m.name for m in scene.models.values() if not m.in_bounds(volume)]
    if outside:
        raise SimError(
            400,
            "MODELS_OUT_OF_BOUNDS",
            f"{counted(len(outside), 'model')} {noun(len(outside), 'is', 'are')} outside the "
            f"build volume: {', '.join(outside[:10])}",
        )
    if isinstance(target, SimPrinter):
        accepted: tuple[str, ...] = (target.machine_type_id,)
        ready = target.ready_to_print_now and target.status != "OFFLINE"
        target_id, kind = target.serial, "printer"
    else:
        members = {p.serial: p for p in fleet.printers()}
        accepted = tuple(members[s].machine_type_id for s in target.printers if s in members)
        ready = not target.queue_paused
        target_id, kind = target.group_id, "group"
    if scene.settings.machine_type not in accepted:
        raise SimError(
            400,
            "MACHINE_TYPE_MISMATCH",
            f"scene {scene.id} is set up for {scene.settings.machine_type} but {target_id} "
            f"prints {', '.join(sorted(set(accepted))) or 'nothing'}",
        )
    if print_now and not ready:
        raise SimError(
            400,
            "PRINTER_NOT_READY",
            f"{target_id} is not ready to print now; send print_now false to queue the job",
        )
    starts_now = ready if print_now is None else print_now
    figures = estimates.scene_figures(scene, catalogue)
    hashes = "".join(m.canonical_hash() for m in scene.models.values())
    return {
        "job_id": str(uuid.uuid4()),
        "job_name": job_name,
        "printer": target_id,
        "target_kind": kind,
        "print_now": starts_now,
        "status": "PRINTING" if starts_now and kind == "printer" else "QUEUED",
        "scene_id": scene.id,
        "scene_settings": scene.settings.to_json(),
        # The custom print setting (.fps) printed with, knobs and all; None for a catalogue one.
        "custom_print_setting": (
            None if scene.settings.custom is None else scene.settings.custom.to_json()
        ),
        "layer_count": figures.layer_count,
        "volume_ml": figures.volume_ml,
        "estimated_print_time_s": figures.print_time_s,
        "material_usage": estimates.material_usage(scene, catalogue),
        "models": [
            {"id": m.id, "name": m.name, "raw_mesh_hash": m.raw_mesh_hash}
            for m in scene.models.values()
        ],
        "scene_hash": hashlib.sha256(hashes.encode("ascii")).hexdigest(),
        "created_at": utc_now_iso(),
    }
