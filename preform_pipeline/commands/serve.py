"""``preform-pipeline serve SETTINGS``: the web dashboard on the job store (docs/web.md).

It shows the queue, builds (with their labelled screenshots), printers, history and failed
cases, and lets operators approve or reject held builds, retry or cancel cases and settle
unverified prints. It runs beside ``watch`` (or inside it: ``watch --serve``); the daemon does
the printing, the dashboard only moves states in the store.

``serve --hash-secret`` reads a password or token from stdin (never from the command line)
and prints the ``secret_hash`` to put into the settings' ``web.users``.

Exit status: 0 after Ctrl-C or SIGTERM; 1 when the settings or the store cannot be used or the
port is taken; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import replace
from typing import TextIO

from preform_pipeline.cloud import credentials_configured, load_cloud_credentials, make_web_client
from preform_pipeline.commands._common import (
    EXIT_FAILURE,
    EXIT_OK,
    configure_command_logging,
    load_command_settings,
)
from preform_pipeline.commands.arguments.serve import (
    HELP,
    MAX_PORT,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import PipelineError
from preform_pipeline.hotfolder.files import jobs_command
from preform_pipeline.settings import Settings
from preform_pipeline.settings.web import WebSettings, hash_secret
from preform_pipeline.store.opening import open_store
from preform_pipeline.verify.targets import WebApiPrinters
from preform_pipeline.web import LiveSources, WebServer
from preform_pipeline.wording import counted

__all__ = ["HELP", "MAX_PORT", "NAME", "add_arguments", "run", "web_settings_of"]


def web_settings_of(settings: Settings, host: str | None, port: int | None) -> WebSettings:
    """The settings' ``web`` section with ``--host`` / ``--port`` applied."""
    web = settings.web
    return replace(web, host=host or web.host, port=web.port if port is None else port)


def _hash_from_stdin(stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    secret = (getpass.getpass("secret: ", stream=stderr) if stdin.isatty()
              else stdin.readline()).strip()
    if len(secret) < 12:
        print("error: use a secret of at least 12 characters", file=stderr)
        return EXIT_FAILURE
    print(hash_secret(secret), file=stdout)
    return EXIT_OK


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.hash_secret:
        return _hash_from_stdin(sys.stdin, stdout, stderr)
    if args.settings is None:
        print("error: name the settings file (its web: section lists the users)", file=stderr)
        return EXIT_FAILURE
    settings = load_command_settings(args.settings, stderr)
    if settings is None:
        return EXIT_FAILURE
    configure_command_logging(settings, args.log_level, stderr, json_file=settings.logging.file)
    web = web_settings_of(settings, args.host, args.port)
    try:
        store = open_store(settings.store.location, running=True)
    except PipelineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILURE
    sources = LiveSources()
    if credentials_configured(settings.cloud, os.environ):
        client = make_web_client(settings.cloud, load_cloud_credentials(settings.cloud),
                                 ledger=store)
        printers = WebApiPrinters(client)
        sources = LiveSources(printers=lambda: printers, budget=client.budget)
    with store:
        try:
            server = WebServer(store, web, sources, jobs=jobs_command(settings))
        except PipelineError as exc:
            print(f"error: {exc}", file=stderr)
            return EXIT_FAILURE
        def announce() -> None:
            # Only once it listens: a taken port must not be announced as served.
            print(f"dashboard on {server.url} ({counted(len(web.users), 'user')})",
                  file=stdout, flush=True)

        try:
            server.serve_forever(on_started=announce)
        except PipelineError as exc:
            print(f"error: {exc}", file=stderr)
            return EXIT_FAILURE
    print("dashboard stopped", file=stdout, flush=True)
    return EXIT_OK
