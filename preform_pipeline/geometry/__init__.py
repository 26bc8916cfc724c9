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

from typing import TYPE_CHECKING, Final

from preform_pipeline.lazyexports import lazy_exports

if TYPE_CHECKING:
    from preform_pipeline.geometry._checks import mesh_defects
    from preform_pipeline.geometry.analysis import (
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
    from preform_pipeline.geometry.bounded import (
        DEFAULT_MAX_COMPRESSION_RATIO,
        DEFAULT_MAX_MODEL_FILE_BYTES,
        DEFAULT_MAX_XML_DEPTH,
        DEFAULT_MAX_ZIP_MEMBER_BYTES,
    )
    from preform_pipeline.geometry.mesh import Mesh, weld_vertices
    from preform_pipeline.geometry.obj import write_obj
    from preform_pipeline.geometry.readers import SUPPORTED_SUFFIXES, read_mesh, read_mesh_bytes
    from preform_pipeline.geometry.sniff import impostor
    from preform_pipeline.geometry.stl import stl_completeness, write_stl
    from preform_pipeline.geometry.threemf import threemf_completeness, write_3mf
    from preform_pipeline.geometry.transforms import (
        AXIS_ALIGNED_ROTATIONS,
        euler_matrix,
        matrix_to_euler,
    )
    from preform_pipeline.geometry.units import (
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

#: Where each name lives: imported on first use (lazyexports.py), so that the completeness
#: checks the hot folder's intake (and so `jobs`) imports do not import the readers' numpy.
_HOMES: Final = {
    "preform_pipeline.geometry._checks": (
        "mesh_defects",
    ),
    "preform_pipeline.geometry.analysis": (
        "DEFAULT_FLAT_FACE_ANGLE_DEG",
        "DEFAULT_OVERHANG_ANGLE_DEG",
        "DEFAULT_PLATFORM_CONTACT_TOLERANCE_MM",
        "DEFAULT_SUPPORT_FILL_FACTOR",
        "best_flat_orientation",
        "downward_area",
        "footprint",
        "platform_contact_area",
        "support_volume_estimate",
    ),
    "preform_pipeline.geometry.bounded": (
        "DEFAULT_MAX_COMPRESSION_RATIO",
        "DEFAULT_MAX_MODEL_FILE_BYTES",
        "DEFAULT_MAX_XML_DEPTH",
        "DEFAULT_MAX_ZIP_MEMBER_BYTES",
    ),
    "preform_pipeline.geometry.mesh": (
        "Mesh",
        "weld_vertices",
    ),
    "preform_pipeline.geometry.obj": (
        "write_obj",
    ),
    "preform_pipeline.geometry.readers": (
        "SUPPORTED_SUFFIXES",
        "read_mesh",
        "read_mesh_bytes",
    ),
    "preform_pipeline.geometry.sniff": (
        "impostor",
    ),
    "preform_pipeline.geometry.stl": (
        "stl_completeness",
        "write_stl",
    ),
    "preform_pipeline.geometry.threemf": (
        "threemf_completeness",
        "write_3mf",
    ),
    "preform_pipeline.geometry.transforms": (
        "AXIS_ALIGNED_ROTATIONS",
        "euler_matrix",
        "matrix_to_euler",
    ),
    "preform_pipeline.geometry.units": (
        "DEFAULT_INCH_DETECTION_MAX_EXTENT",
        "DEFAULT_MIN_FEATURE_MM",
        "INCH_MM",
        "Units",
        "UnitsDecision",
        "UnitsSource",
        "decide_units",
        "detect_units",
        "parse_units",
    ),
}

__getattr__ = lazy_exports(__name__, _HOMES)
