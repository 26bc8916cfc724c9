"""Open the job store the settings name: a PostgreSQL URL, or (the default) a SQLite file."""

from __future__ import annotations

from pathlib import Path

from preform_pipeline.clock import Clock
from preform_pipeline.store.pgurl import is_postgres_url, redact_url
from preform_pipeline.store.protocol import JobStore
from preform_pipeline.store.sqlite import SqliteJobStore, store_file_there

__all__ = ["check_store", "describe_store", "is_shared_store", "open_store",
           "store_exists"]


def is_shared_store(location: str | Path) -> bool:
    """True when ``location`` is a PostgreSQL URL (a store several nodes share)."""
    return isinstance(location, str) and is_postgres_url(location)


def store_exists(location: str | Path) -> bool:
    """False only for a store file that is not there (nothing has run yet: a command that
    reads says so instead of creating it); a PostgreSQL URL is opened to tell. A file this
    account cannot reach is a StoreError saying so, not "not there"."""
    return not isinstance(location, Path) or store_file_there(location)


def check_store(location: str | Path) -> None:
    """The StoreError :func:`open_store` would raise for ``location``, by the open's own rule,
    with nothing opened as a store, created, written or migrated (a dry run's look at the
    store its real run would open). A PostgreSQL URL is connected to and its schema version
    read in a read-only transaction (``PostgresJobStore.check``)."""
    if is_shared_store(location):
        from preform_pipeline.store.postgres import PostgresJobStore

        PostgresJobStore.check(str(location))
    else:
        SqliteJobStore.check(location)


def describe_store(location: str | Path) -> str:
    """How to name the store in output and logs: the file, or the URL without its password."""
    return redact_url(str(location)) if is_shared_store(location) else str(location)


def open_store(
    location: str | Path, *, create: bool = True, clock: Clock | None = None,
    read_only: bool = False, running: bool = False,
) -> JobStore:
    """The store at ``location`` (``settings.store.location``, or ``--store``).

    A SQLite file is created unless ``create`` is False; a PostgreSQL database must exist
    (its tables are created and migrated on first use either way). ``read_only``: the
    caller only reads, so a SQLite file is opened without writing to it (a store this
    account may only read can be listed); a PostgreSQL store's rights are the database's.
    ``running``: a running ``serve`` (or ``watch``) holds it, which keeps trying after a
    refusal; a command that exits is not told so (PgFailure.hint_for).
    """
    if is_shared_store(location):
        from preform_pipeline.store.postgres import PostgresJobStore

        return PostgresJobStore(str(location), clock=clock, running=running)
    return SqliteJobStore(location, clock=clock, create=create, read_only=read_only)
