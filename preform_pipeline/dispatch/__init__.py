"""Dispatch: which printer a prepared build goes to, and waiting until one is free.

See docs/dispatch.md. Modules: :mod:`.waiting` (the waiting queue, priority then oldest
first) and :mod:`.sender` (loading the saved .form and sending it through the print owner;
printer readiness). Where a build may print is :mod:`preform_pipeline.printing.target`. Import
the modules directly: this package imports nothing at load.
"""

from __future__ import annotations

__all__: list[str] = []
