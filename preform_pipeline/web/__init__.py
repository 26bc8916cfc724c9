"""The web dashboard: queue, builds, printers, history, failed cases, approval (docs/web.md).

``preform-pipeline serve SETTINGS`` (or ``watch --serve``) runs it on the job store. Pages are
Starlette + Jinja2, rendered on the server; live parts refresh with a little plain JavaScript.
Access is by the users of the settings' ``web`` section (viewer or operator), secrets hashed.
"""

from __future__ import annotations

from preform_pipeline.web.app import create_app
from preform_pipeline.web.server import WebServer
from preform_pipeline.web.sources import LiveSources

__all__ = ["LiveSources", "WebServer", "create_app"]
