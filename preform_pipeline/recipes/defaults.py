"""The recipe checker's limits that ``validate``'s options default to: a leaf, so that
``validate --help`` states them without importing the checker (its schema, jsonschema, the
catalogue), as ``executor/defaults.py`` is for ``run``."""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_SERVER_TIMEOUT_S"]

#: How long ``validate --server`` waits for ``/list-materials/`` before using the shipped
#: catalogue: validation is meant to take milliseconds, not to hang on a sleeping server.
DEFAULT_SERVER_TIMEOUT_S: Final = 2.0
