"""preform-pipeline: batch job preparation for Formlabs printers."""

from __future__ import annotations

from preform_pipeline.richless import import_structlog_without_rich

__all__ = ["__version__"]

__version__ = "0.1.0"

# Before any module of the package imports structlog (see richless.py for why).
import_structlog_without_rich()
