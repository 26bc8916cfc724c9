"""Dispatch: which printer a prepared build goes to, and waiting until one is free.

See docs/dispatch.md. Layer: beside executor/ and verify/ (it hands builds to printing/).
"""

from __future__ import annotations

from preform_pipeline.dispatch.known import known_printers, printers_of_fleet, printers_of_server

__all__ = ["known_printers", "printers_of_fleet", "printers_of_server"]
