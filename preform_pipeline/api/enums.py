"""The Local API's enumerations, named and spelled as the contract spells them.

Every enum mixes in ``str`` so a member compares equal to the plain string the server sends
(``Lock.FREE == "FREE"``) and a recipe value can be turned into a member with ``Lock("FREE")``,
which raises ``ValueError`` naming the bad value.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "ApplicationMode",
    "ImportUnits",
    "Lock",
    "OperationStatus",
    "PackingType",
    "RaftType",
    "RepairBehavior",
    "Units",
    "ViewType",
    "WorkspaceMode",
]


class _SpecEnum(str, Enum):
    """A contract enumeration; ``str()`` gives the wire value, not ``Class.MEMBER``."""

    def __str__(self) -> str:
        return str(self.value)


class RepairBehavior(_SpecEnum):
    """What the server does with a broken mesh on import (server default: ERROR)."""

    REPAIR = "REPAIR"
    ERROR = "ERROR"
    IGNORE = "IGNORE"


class Units(_SpecEnum):
    """Units of a model already in a scene."""

    MILLIMETERS = "MILLIMETERS"
    INCHES = "INCHES"


class ImportUnits(_SpecEnum):
    """Units to read a model file in (server default: DETECTED)."""

    DETECTED = "DETECTED"
    MILLIMETERS = "MILLIMETERS"
    INCHES = "INCHES"


class Lock(_SpecEnum):
    """Orientation constraints that auto-pack honours (server default: FREE)."""

    FREE = "FREE"
    LOCKED_XY_ROTATION_FREE_TRANSLATION = "LOCKED_XY_ROTATION_FREE_TRANSLATION"
    LOCKED_ROTATION_FREE_TRANSLATION = "LOCKED_ROTATION_FREE_TRANSLATION"
    FULLY_LOCKED = "FULLY_LOCKED"


class WorkspaceMode(_SpecEnum):
    """Algorithm family for auto-orient and auto-layout.

    The contract has a single value: leaving ``mode`` unset selects the standard workspace.
    """

    DENTAL = "DENTAL"


class RaftType(_SpecEnum):
    """Raft generated under supported models."""

    FULL_RAFT = "FULL_RAFT"
    MINI_RAFT = "MINI_RAFT"
    MINI_RAFTS_ON_BP = "MINI_RAFTS_ON_BP"


class PackingType(_SpecEnum):
    """Optimisation goal of pack-and-cage (server default: PACK_VOLUME)."""

    PACK_NORMAL = "PACK_NORMAL"
    PACK_VOLUME = "PACK_VOLUME"
    PACK_HEIGHT = "PACK_HEIGHT"
    PACK_NONE = "PACK_NONE"


class ApplicationMode(_SpecEnum):
    """Whether a label is raised from or cut into the surface (server default: EMBOSS)."""

    EMBOSS = "EMBOSS"
    ENGRAVE = "ENGRAVE"


class ViewType(_SpecEnum):
    """Camera framing of a screenshot (server default: ZOOM_ON_MODELS)."""

    ZOOM_ON_MODELS = "ZOOM_ON_MODELS"
    FULL_BUILD_VOLUME = "FULL_BUILD_VOLUME"
    FULL_PLATFORM_WIDTH = "FULL_PLATFORM_WIDTH"


class OperationStatus(_SpecEnum):
    """State of an asynchronous operation."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
