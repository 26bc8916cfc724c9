"""Logging a PreFormServer in to the Dashboard, so it accepts prints to Fleet Control queues.

A server forgets its login when it restarts, so the pool calls :func:`log_in` after every start
and restart (and after a remote server comes back). A refused or failed login does not take
the server out of rotation: everything but queue prints still works on it, and a queue print
then fails with the server's own ``NOT_LOGGED_IN``, which says what is wrong.
"""

from __future__ import annotations

from preform_pipeline.api import PreFormClient
from preform_pipeline.cloud.login import DashboardLogin
from preform_pipeline.errors import PipelineError
from preform_pipeline.logging import get_logger

__all__ = ["log_in"]

log = get_logger(__name__)


def log_in(server: str, url: str, login: DashboardLogin, *, timeout_s: float) -> bool:
    """POST ``/login/`` to the server at ``url``; True when it accepted the login.

    The password goes in the request body only; neither it nor the tokens returned are logged.
    """
    try:
        with PreFormClient(url, timeout=timeout_s, check_version_on_first_use=False) as client:
            client.login(login.username, login.password, timeout=timeout_s)
    except PipelineError as exc:
        log.warning("server_login_failed", server=server, username=login.username,
                    error=str(exc))
        return False
    log.info("server_logged_in", server=server, username=login.username)
    return True
