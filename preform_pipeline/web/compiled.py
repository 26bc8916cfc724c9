"""The dashboard's templates compiled once a process, whatever number of dashboards it runs.

Each :class:`~preform_pipeline.web.app.Dashboard` has a Jinja environment of its own (its
globals carry its own settings), and an environment compiles every template it renders the
first time: tens of milliseconds of CPU a page, paid again by every dashboard a process starts
(the test suite starts hundreds). Compiled code does not depend on the globals, which are read
when a page is rendered, so the environments share it through this cache. Jinja keys a bucket
by the template's name and file and checks it against the source's checksum, so an edited
template is compiled again.

Compiled code does depend on part of an environment's configuration: its syntax, its
``finalize`` and whether the template is autoescaped (both applied to constants when
compiling), the filters and tests it folds or calls, async or not. Jinja's own caches leave
all that out of their key (pallets/jinja#1738), so this one adds it (:func:`_compiled_alike`):
environments configured alike, as every ``Dashboard``'s is, share their code; one configured
otherwise compiles its own and never reads another's.
"""

from __future__ import annotations

import threading

from jinja2 import BytecodeCache, Environment
from jinja2.bccache import Bucket

__all__ = ["COMPILED", "CompiledOnce"]


def _compiled_alike(environment: Environment, name: str) -> tuple[object, ...]:
    """What of ``environment`` the code it compiles for template ``name`` depends on besides
    the source: two environments equal here compile it to the same code. Objects
    (``finalize``, filters, tests) are compared by identity, and kept by the cache."""
    autoescape = environment.autoescape
    return (
        # The lexer's own cache key (jinja2.lexer.get_lexer).
        environment.block_start_string, environment.block_end_string,
        environment.variable_start_string, environment.variable_end_string,
        environment.comment_start_string, environment.comment_end_string,
        environment.line_statement_prefix, environment.line_comment_prefix,
        environment.trim_blocks, environment.lstrip_blocks, environment.newline_sequence,
        environment.keep_trailing_newline,
        # The code generator's. ``autoescape`` by its answer for this template, as Jinja's
        # EvalContext reads it: Starlette gives every environment a select_autoescape of its
        # own, alike in what it answers.
        environment.code_generator_class, environment.is_async, environment.optimized,
        bool(autoescape(name) if callable(autoescape) else autoescape), environment.finalize,
        tuple(sorted(environment.extensions)),
        frozenset(environment.filters.items()), frozenset(environment.tests.items()),
    )


class CompiledOnce(BytecodeCache):
    """Compiled templates held in memory, shared by every environment given it that is
    configured alike (:func:`_compiled_alike`)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        #: Each configuration met, numbered: its number is part of its buckets' keys.
        self._configurations: dict[tuple[object, ...], int] = {}
        # Dashboards run on threads of their own (one per uvicorn server).
        self._lock = threading.Lock()

    def get_bucket(self, environment: Environment, name: str, filename: str | None,
                   source: str) -> Bucket:
        alike = _compiled_alike(environment, name)
        with self._lock:
            number = self._configurations.setdefault(alike, len(self._configurations))
        key = f"{self.get_cache_key(name, filename)}|{number}"
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            # Checks the source's checksum: an edited template's old code is not loaded.
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code


#: The process's one cache (``Dashboard`` gives it to its environment).
COMPILED = CompiledOnce()
