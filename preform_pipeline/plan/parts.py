"""What counts as a part of a case, judged by a file's name alone.

Kept apart from :mod:`.sources` (which walks folders with the planner's helpers, and numpy
with them) because the hot folder's intake and ``jobs`` ask it too, and their starts import
no planner (``tests/unit/test_cli_start_imports.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from preform_pipeline.geometry.sniff import FORMAT_NAMES

__all__ = ["CAD_SUFFIXES", "MODEL_SUFFIXES", "OTHER_MESH_SUFFIXES", "is_part"]

#: CAD formats: the part must be exported to a mesh first.
CAD_SUFFIXES: Final = frozenset({
    ".step", ".stp", ".iges", ".igs", ".sldprt", ".sldasm", ".f3d", ".ipt", ".iam", ".prt",
    ".catpart", ".x_t", ".x_b", ".3dm", ".skp", ".dwg", ".dxf", ".sat", ".par", ".asm",
})
#: Mesh formats PreFormServer does not import: convert them.
OTHER_MESH_SUFFIXES: Final = frozenset({
    ".ply", ".amf", ".off", ".fbx", ".dae", ".gltf", ".glb", ".wrl", ".vrml", ".3ds", ".x3d",
})

#: The model files the readers take (``geometry.readers.SUPPORTED_SUFFIXES``, which imports
#: the readers and numpy with them; the sniffer names the same formats and is light).
MODEL_SUFFIXES: Final = frozenset(FORMAT_NAMES)
#: Files that hold a part without being a model PreFormServer imports: a PreForm job, an
#: archive (of models, as often as not).
_PACKAGES: Final = frozenset({".form", ".zip"})


def is_part(path: Path) -> bool:
    """Whether ``path`` is, by its name, a part of a case: a model file, or a part in a
    format that must be exported or converted first (CAD, another mesh, a PreForm job, an
    archive). Such a file that cannot be prepared holds its case (:mod:`preform_pipeline.
    plan.held`); a file that is plainly no part (a prescription PDF, a photo, a text, a
    sidecar without its model) is refused alone and its case goes on: it is missing from
    no build."""
    suffix = path.suffix.lower()
    return (suffix in MODEL_SUFFIXES or suffix in CAD_SUFFIXES
            or suffix in OTHER_MESH_SUFFIXES or suffix in _PACKAGES)
