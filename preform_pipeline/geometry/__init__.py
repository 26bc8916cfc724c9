"""Model files in and out, and what the pipeline measures on them.

Readers (:func:`read_mesh`, :func:`read_mesh_bytes`) sniff the content first (a PNG named
``.stl`` is named as a PNG), read within size, inflation and XML-nesting limits, refuse
degenerate meshes (no triangles, non-finite coordinates, all triangles of zero area, zero
volume), and return a :class:`Mesh`: an ``(N, 3, 3)``
float32 triangle array with a name. Writers produce STL, OBJ and 3MF. Completeness checks tell a
hot folder whether a file is still being written. Analyses give the footprint, overhang area,
a support-volume estimate, a unit guess and a simple auto-orientation.
"""

from __future__ import annotations

from ._checks import mesh_defects
from .analysis import (
    DEFAULT_FLAT_FACE_ANGLE_DEG,
    DEFAULT_OVERHANG_ANGLE_DEG,
    DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM,
    DEFAULT_SUPPORT_FILL_FACTOR,
    best_flat_orientation,
    downward_area,
    footprint,
    platform_contact_area,
    support_volume_estimate,
)
from .bounded import (
    DEFAULT_MAX_COMPRESSION_RATIO,
    DEFAULT_MAX_MODEL_FILE_BYTES,
    DEFAULT_MAX_XML_DEPTH,
    DEFAULT_MAX_ZIP_MEMBER_BYTES,
)
from .mesh import Mesh, weld_vertices
from .obj import write_obj
from .readers import SUPPORTED_SUFFIXES, read_mesh, read_mesh_bytes
from .sniff import impostor
from .stl import stl_completeness, write_stl
from .threemf import threemf_completeness, write_3mf
from .transforms import AXIS_ALIGNED_ROTATIONS, euler_matrix, matrix_to_euler
from .units import (
    DEFAULT_INCH_DETECTION_MAX_EXTENT,
    DEFAULT_MIN_FEATURE_MM,
    INCH_MM,
    Units,
    UnitsDecision,
    UnitsSource,
    decide_units,
    detect_units,
    parse_units,
)

__all__ = [
    "AXIS_ALIGNED_ROTATIONS",
    "DEFAULT_FLAT_FACE_ANGLE_DEG",
    "DEFAULT_INCH_DETECTION_MAX_EXTENT",
    "DEFAULT_MAX_COMPRESSION_RATIO",
    "DEFAULT_MAX_MODEL_FILE_BYTES",
    "DEFAULT_MAX_XML_DEPTH",
    "DEFAULT_MAX_ZIP_MEMBER_BYTES",
    "DEFAULT_MIN_FEATURE_MM",
    "DEFAULT_OVERHANG_ANGLE_DEG",
    "DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM",
    "DEFAULT_SUPPORT_FILL_FACTOR",
    "INCH_MM",
    "SUPPORTED_SUFFIXES",
    "Mesh",
    "Units",
    "UnitsDecision",
    "UnitsSource",
    "best_flat_orientation",
    "decide_units",
    "detect_units",
    "parse_units",
    "downward_area",
    "euler_matrix",
    "footprint",
    "impostor",
    "matrix_to_euler",
    "mesh_defects",
    "platform_contact_area",
    "read_mesh",
    "read_mesh_bytes",
    "stl_completeness",
    "support_volume_estimate",
    "threemf_completeness",
    "weld_vertices",
    "write_3mf",
    "write_obj",
    "write_stl",
]
