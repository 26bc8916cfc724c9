"""Test helpers that ship with the package: tiny model files, settings files for simulated
hot folders, waiting on conditions, and reading a simulated fleet (the manual clock is
:class:`preform_pipeline.clock.ManualClock`).

```python
clock = ManualClock()
tracker = StabilityTracker(clock, quiet_period_s=5, incomplete_timeout_s=60)
clock.advance(5.0)
```

Used by the hot folder's own tests and benchmarks; handy for anyone testing a setup.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from preform_pipeline.servers import ServerPool
from preform_pipeline.settings import PoolSettings

if TYPE_CHECKING:  # the daemon imports this package's modules; only its type is needed here
    from preform_pipeline.hotfolder.daemon import HotFolderDaemon

__all__ = [
    "DEFAULT_WAIT_INTERVAL_S",
    "declare_fleet",
    "fleet_jobs",
    "pool_factory",
    "running_daemon",
    "tetra_3mf_bytes",
    "tetra_obj_bytes",
    "tetra_stl_bytes",
    "wait_for",
    "write_hotfolder_settings",
    "write_recipe",
]

DEFAULT_WAIT_INTERVAL_S: Final = 0.02

#: A resin recipe with nothing expensive: import, (optionally) print; tiny models fit many to
#: a platform.
_RECIPE: Final = """\
name: {name}
scene:
  machine_type: FORM-4-0
  material_code: FLGPGR05
  layer_thickness_mm: 0.1
import:
  units: MILLIMETERS
  repair_behavior: IGNORE
steps:
{steps}
batching:
  max_models_per_build: {per_build}
  keep_cases_together: true
outputs:
  root: {root}
"""


def tetra_stl_bytes(seed: int = 0, *, size_mm: float = 2.0, copies: int = 1) -> bytes:
    """A binary STL of ``copies`` closed tetrahedra, ``size_mm`` wide; ``seed`` shifts the
    corners by a hair so every seed gives different content (no duplicates)."""
    shift = (seed % 100_000) * 1e-5
    s = size_mm
    a, b, c, d = (shift, 0.0, 0.0), (s, 0.0, 0.0), (0.0, s, 0.0), (0.0, 0.0, s)
    faces = [(a, c, b), (a, b, d), (a, d, c), (b, c, d)]
    body = bytearray()
    count = 0
    for copy in range(copies):
        dx = copy * (s + 1.0)
        for face in faces:
            body += struct.pack("<3f", 0.0, 0.0, 0.0)
            for x, y, z in face:
                body += struct.pack("<3f", x + dx, y, z)
            body += b"\x00\x00"
            count += 1
    header = b"preform-pipeline test solid".ljust(80, b" ")
    return header + struct.pack("<I", count) + bytes(body)


def tetra_obj_bytes(seed: int = 0) -> bytes:
    """A closed tetrahedron as OBJ text; ``seed`` moves one corner a hair."""
    shift = seed * 1e-5
    return (f"v {shift} 0 0\nv 2 0 0\nv 0 2 0\nv 0 0 2\n"
            "f 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n").encode()


def tetra_3mf_bytes(seed: int = 0) -> bytes:
    """A closed tetrahedron as a 3MF package; ``seed`` moves one corner a hair."""
    corners = ((seed * 1e-5, 0, 0), (2, 0, 0), (0, 2, 0), (0, 0, 2))
    vertices = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in corners)
    faces = ((0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3))
    triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in faces)
    model = ('<?xml version="1.0" encoding="UTF-8"?><model unit="millimeter" xmlns='
             '"http://schemas.microsoft.com/3dmanufacturing/core/2015/02"><resources>'
             f'<object id="1" type="model"><mesh><vertices>{vertices}</vertices><triangles>'
             f'{triangles}</triangles></mesh></object></resources><build><item objectid="1"/>'
             '</build></model>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?>'
                         '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                         'content-types"><Default Extension="model" ContentType="application/'
                         'vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>')
        package.writestr("3D/3dmodel.model", model)
    return buffer.getvalue()


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    *,
    interval: float = DEFAULT_WAIT_INTERVAL_S,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` until it is true; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)


def fleet_jobs(fleet_dir: Path) -> list[dict[str, Any]]:
    """Every print a simulated fleet accepted (``<fleet>/jobs/*.json``)."""
    folder = fleet_dir / "jobs"
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def write_recipe(
    folder: Path,
    *,
    name: str = "hot",
    printer: str | None = "SimulatedForm4-1",
    per_build: int = 100,
    extra_steps: Sequence[str] = (),
    approval: bool = False,
) -> Path:
    """A fast recipe file (see :data:`_RECIPE`); ``printer`` None: no print step;
    ``approval``: the print waits for an operator's approval (docs/web.md)."""
    steps = [f"  - {s}" for s in extra_steps]
    if printer is not None:
        held = "\n      approval: required" if approval else ""
        steps.append(f"  - print:\n      printer: {printer}{held}")
    if not steps:
        steps = ["  - estimate"]  # a recipe needs a step; this one is cheap
    path = folder / f"{name}.yaml"
    path.write_text(
        _RECIPE.format(name=name, steps="\n".join(steps), per_build=per_build,
                    root=(folder / "out").as_posix()),
        encoding="utf-8",
    )
    return path


def write_hotfolder_settings(
    folder: Path,
    recipe: Path,
    *,
    fleet_dir: Path | None = None,
    servers: int = 1,
    inbox: Mapping[str, Any] | None = None,
    hotfolders: Mapping[str, Any] | None = None,
    simulator_args: Sequence[str] = ("--latency", "instant"),
) -> Path:
    """A settings file: simulated servers (``simulator_args``: instant latency; a shared
    fleet folder), a store in ``folder``, one inbox ``folder/inbox`` bound to ``recipe``."""
    extra = list(simulator_args)
    if fleet_dir is not None:
        extra += ["--fleet-dir", str(fleet_dir)]
    data: dict[str, Any] = {
        "servers": {
            "count": servers,
            "base_port": 0,
            "startup_timeout_s": 30,
            "stop_timeout_s": 2,
            "health_interval_s": 0,
            "restart_backoff_s": 0.05,
            "restart_backoff_max_s": 0.2,
            "recycle_after_builds": 0,
            "extra_args": extra,
        },
        "store": {"path": str(folder / "jobs.sqlite3")},
        "hotfolders": {
            "inboxes": [
                {"path": str(folder / "inbox"), "recipe": str(recipe), "quiet_period_s": 0.5,
                 **(inbox or {})}
            ],
            "batching": {"window_s": 0.5},
            "stop_deadline_s": 20,
            **(hotfolders or {}),
        },
    }
    path = folder / "settings.yaml"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def declare_fleet(
    settings: Path,
    printers: Sequence[str],
    *,
    print_time_scale: float = 0.0,
    machine_type: str = "FORM-4-0",
    material: str = "FLGPGR05",
    sections: Mapping[str, Any] | None = None,
) -> Path:
    """Add a declared simulated fleet (``printers``, busy for a print's estimated time times
    ``print_time_scale``) and other ``sections`` to a settings file of
    :func:`write_hotfolder_settings`; the path."""
    data = json.loads(settings.read_text(encoding="utf-8"))
    data["simulator"] = {
        "print_time_scale": print_time_scale,
        "fleet": [{"name": p, "machine_type": machine_type, "material": material}
                  for p in printers],
    }
    data.update(sections or {})
    settings.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return settings


def pool_factory(settings: PoolSettings) -> Callable[[], ServerPool]:
    """The daemon's pool factory for ``settings``: a started pool, signals left alone."""

    def start() -> ServerPool:
        pool = ServerPool(settings, handle_signals=False)
        pool.start()
        return pool

    return start


@contextmanager
def running_daemon(daemon: HotFolderDaemon, *, timeout: float = 60.0) -> Iterator[None]:
    """Run ``daemon`` on a thread until the block ends (its watcher running first), then stop
    it and wait for the thread; AssertionError if it does not end within ``timeout``."""
    thread = threading.Thread(target=daemon.run, name="daemon")
    thread.start()
    try:
        wait_for(lambda: daemon.watcher.running, 10, what="the watcher to start")
        yield
    finally:
        daemon.stop()
        thread.join(timeout)
    assert not thread.is_alive(), "the daemon did not stop"
