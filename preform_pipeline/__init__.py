"""preform-pipeline: batch job preparation for Formlabs printers."""

from __future__ import annotations

from preform_pipeline.thirdparty import import_structlog_without_rich, leave_out_httpx_command_line

__all__ = ["__version__"]

__version__ = "0.1.0"

# Before any module of the package imports structlog or httpx (thirdparty.py says why).
import_structlog_without_rich()
leave_out_httpx_command_line()
