"""The one exception tree of preform-pipeline.

Every error the package raises on purpose derives from :class:`PipelineError` and carries the
context a user needs to act: the file and position, the request that failed and what the
server answered, the exit code and last words of a process.

```
PipelineError
 ├── ConfigError                      settings file / environment is wrong
 │    └── SettingsError               several problems in the settings, one per line, positioned
 ├── UnusablePathError                an inbox, output folder or store path cannot be used
 ├── FileWriteError                   a report, note or record could not be written (also OSError)
 ├── RecipeError                      a recipe is invalid (carries every problem at once)
 ├── TemplateError                    an output template is unsafe or names an unknown field
 ├── ModelFileError                   a model file cannot be read (truncated, malformed, missing)
 │    └── NotAModelError              its content is plainly no model (a PNG, a PDF, plain text)
 ├── SidecarError                     a hot-folder sidecar (.json/.yaml) is unreadable or invalid
 ├── PlanningError                    models cannot be grouped into builds
 │    ├── ModelTooLargeError          a model does not fit an empty build platform
 │    └── LabelDoesNotFitError        a label's text does not fit the face its rule names
 ├── StepGraphError                   a step graph has a cycle or a missing dependency
 ├── ApiError                         talking to a PreFormServer (Local API) failed
 │    ├── TransientApiError           retry elsewhere: the server, not the input, is at fault
 │    │    ├── ServerUnreachableError     connect refused / reset / protocol broken
 │    │    ├── ServerTimeoutError         no answer before the caller's deadline
 │    │    ├── ServerInternalError        the server answered 5xx
 │    │    │    ├── ServerBusyError       429 or 503: busy or down for now (its Retry-After)
 │    │    │    └── SceneLostError        the server no longer has the scene (restarted)
 │    │    └── ImportNotAppliedError      import answered success but added no model
 │    └── PermanentApiError           this input is wrong: retrying elsewhere will not help
 │         ├── RequestRejectedError       the server answered 4xx (code, message, status)
 │         ├── OperationFailedError       an async operation ended FAILED
 │         └── UnsupportedApiVersionError the server's API version is outside the range
 ├── ServerProcessError               a PreFormServer process failed (exit code, stderr tail)
 │    ├── ServerStartTimeoutError     no READY FOR INPUT before the start-up timeout
 │    ├── PortInUseError              the port was taken
 │    ├── ServerRefusedError          it refused to start for good: starting again will not help
 │    └── PoolExhaustedError          every server of the pool is retired (reasons per server)
 ├── LeaseTimeoutError                no server of the pool became free before the lease timeout
 ├── StoreError                       the job store cannot be read or written
 │    ├── InvalidTransitionError      the state table forbids this change (names both states)
 │    ├── StoreConflictError          compare-and-set lost: the state changed meanwhile
 │    ├── StoreNotFoundError          no job or build of that id (the store answered)
 │    ├── NotBatchableError           a job is not free to batch (another build has it)
 │    ├── StoreLockedError            another daemon holds the store (names its host and PID)
 │    ├── StoreUnavailableError       its database did not let it in (kind; whether a wait may help)
 │    └── NodeIdInUseError            a running daemon already has this node id on a shared store
 ├── CloudError                       talking to the Formlabs Web API failed (request, status, body)
 │    ├── CloudAuthError               credentials or access token refused
 │    ├── CloudRateLimitError          request budget exhausted and the caller would not wait
 │    └── CloudUnavailableError        network failure or the Web API answered 5xx
 ├── DecidedAlreadyError              a build's approval was decided by someone else (who, when)
 ├── PrinterSelectionError            no printer fits the `printer: auto` policy (why, per printer)
 └── PrintLookupError                 an interrupted send cannot be looked up: never resent blindly
```

`TransientApiError` versus `PermanentApiError` is the distinction the executor acts on: the
first moves the build to another server, the second fails the build with the reason.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Final

from preform_pipeline.wording import counted, millimetres, utc_moment

__all__ = [
    "ApiError",
    "CloudAuthError",
    "CloudError",
    "CloudRateLimitError",
    "CloudUnavailableError",
    "ConfigError",
    "DecidedAlreadyError",
    "Decision",
    "DISK_FULL_ERRNOS",
    "FileWriteError",
    "ImportNotAppliedError",
    "InvalidTransitionError",
    "LabelDoesNotFitError",
    "LeaseLostError",
    "LeaseTimeoutError",
    "ModelFileError",
    "NotAModelError",
    "ModelTooLargeError",
    "NodeIdInUseError",
    "NotBatchableError",
    "OperationFailedError",
    "PermanentApiError",
    "PipelineError",
    "PlanningError",
    "PoolExhaustedError",
    "PortInUseError",
    "PrintLookupError",
    "PrinterSelectionError",
    "Problem",
    "REFUSAL_PREFIX",
    "RecipeError",
    "RequestInfo",
    "RequestRejectedError",
    "SceneLostError",
    "ServerBusyError",
    "ServerInternalError",
    "ServerProcessError",
    "ServerRefusedError",
    "ServerStartTimeoutError",
    "ServerTimeoutError",
    "ServerUnreachableError",
    "SettingsError",
    "SidecarError",
    "SourceCopyError",
    "StepGraphError",
    "StoreConflictError",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "TemplateError",
    "TransientApiError",
    "UnsupportedApiVersionError",
    "UnusablePathError",
    "WRITE_HINTS",
    "full_disk_advice",
    "refused_by_a_full_disk",
    "write_hint",
]


class PipelineError(Exception):
    """Root of every error preform-pipeline raises on purpose."""

    #: One sentence telling the user what to do next; subclasses and raisers refine it.
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(PipelineError):
    """The settings file or an environment variable is invalid."""

    def __init__(self, message: str, *, source: str | None = None, hint: str | None = None):
        super().__init__(f"{source}: {message}" if source else message, hint=hint)
        self.source = source


class SettingsError(ConfigError):
    """The settings have several problems: every one found, one per line.

    ``key_paths[i]`` is the key path of ``problems[i]`` as parts (``("servers", "count")``),
    so a caller holding the YAML node tree can fill in lines and columns
    (:meth:`with_problems`).
    """

    def __init__(
        self,
        problems: Sequence[Problem],
        key_paths: Sequence[tuple[str | int, ...]] = (),
        *,
        hint: str | None = None,
    ) -> None:
        self.problems = tuple(problems)
        self.key_paths = tuple(key_paths) or tuple(() for _ in self.problems)
        count = len(self.problems)
        head = f"{counted(count, 'problem')} in settings"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems), hint=hint)

    def with_problems(self, problems: Sequence[Problem]) -> SettingsError:
        """The same error with ``problems`` (e.g. positioned) in place of its own."""
        return SettingsError(problems, self.key_paths, hint=self.hint or None)


class UnusablePathError(PipelineError):
    """Folders or files a command needs cannot be used; checked before anything starts.

    ``problems`` holds ``(role, path, what is wrong)`` for every such path, e.g.
    ``("inbox", Path("/srv/inbox"), "is a file, not a folder")``.
    """

    def __init__(
        self, problems: Sequence[tuple[str, Path, str]], *, hint: str | None = None
    ) -> None:
        self.problems = tuple(problems)
        lines = [f"{role} {path}: {what}" for role, path, what in self.problems]
        text = lines[0] if len(lines) == 1 else "\n".join(
            [f"{len(lines)} paths cannot be used:", *lines]
        )
        super().__init__(text, hint=hint or "fix the path in the settings (or the folder "
                         "itself), then start again")


@dataclass(frozen=True)
class Problem:
    """One finding about a user's file: where it is and what is wrong.

    ``json_path`` uses the ``$.steps[2].auto_support.density`` form; ``line`` and ``column`` are
    1-based and ``None`` where the position is unknown (a key that is missing altogether).
    """

    file: str
    line: int | None
    column: int | None
    json_path: str
    message: str
    suggestion: str | None = None
    #: The other values (JSON paths) the finding judged beside its own: when one of them was
    #: already refused, the finding is a knock-on of that refusal and is not said.
    reads: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        text = f"{where}: {self.json_path}: {self.message}"
        if self.suggestion:
            text += f" (did you mean {self.suggestion!r}?)"
        return text


class FileWriteError(PipelineError, OSError):
    """A file the pipeline writes whole or not at all (a report, a note, a record) could not be
    written or renamed into place; nothing half-written is left behind.

    Also an :class:`OSError` (with the cause's ``errno``), so code that treats a failed write
    as an OS error, such as a daemon that logs it and carries on, keeps doing so.
    """

    def __init__(self, path: Path | str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}: {reason}", hint=hint)
        self.path = Path(path)
        self.reason = reason


#: What to check when the operating system refuses a write, by the cause's errno; anything
#: else gets ``_OTHER_WRITE_HINT``. The one table for every file the pipeline writes.
WRITE_HINTS: Final[dict[int, str]] = {
    errno.ENOSPC: "the disk is full: free some space on it, then try again",
    errno.EACCES: "permission denied: let this user write to the folder, then try again",
    errno.EPERM: "not permitted: let this user write to the folder, then try again",
    errno.EROFS: "the file system is read-only: write the output somewhere else",
    errno.EISDIR: "a folder has the file's name: move or rename that folder, then try again",
    errno.ENOTDIR: "a file stands where a folder of the path should be: move it away",
}
# Making a folder where a file stands (mkdir with exist_ok) says EEXIST: the same cause.
WRITE_HINTS[errno.EEXIST] = WRITE_HINTS[errno.ENOTDIR]
# A user's disk quota used up is a full disk to this user: the same remedy, said so.
WRITE_HINTS[errno.EDQUOT] = ("the disk quota is used up: free some space on the disk (or have "
                             "the quota raised), then try again")
_OTHER_WRITE_HINT: Final = "check that the folder exists, is writable and has free space"

#: The operating system's ways of saying that a write was refused for want of room: the
#: disk is full, or this user's quota on it is used up. What a person does is the same (free
#: space), and it is never the fault of the file being written.
DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


def write_hint(cause: OSError) -> str:
    """What helps when the operating system refused a write with ``cause``."""
    return WRITE_HINTS.get(cause.errno or 0, _OTHER_WRITE_HINT)


def full_disk_advice(folder: Path | str) -> str:
    """What helps a build that stopped because the disk holding ``folder`` refused a write
    for want of room (the store's ``Build.full_disk``): the one wording the hot folder's note,
    ``jobs show`` and the dashboard's build page give, each adding its own next step (drop
    the file again, ``jobs retry``). It names the folder, not the disk: a person knows which
    folder they set, and a mount point is not always what they can free."""
    return f"free some space on the disk holding {folder}"


def refused_by_a_full_disk(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is the operating system refusing
    a write for want of room (:data:`DISK_FULL_ERRNOS`). Told by the errno the error
    carries (a :class:`FileWriteError` carries its cause's), never by its words, which a
    translation or a path (a folder named "No space") can change."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    return False


class RecipeError(PipelineError):
    """A recipe is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{counted(count, 'problem')} in recipe"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class TemplateError(PipelineError):
    """An output template is unsafe, malformed or names a field that cannot be filled."""

    def __init__(self, template: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"template {template!r}: {message}", hint=hint)
        self.template = template


class ModelFileError(PipelineError):
    """A model file cannot be used: missing, truncated, malformed or of an unknown type."""

    def __init__(self, path: Path | str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}: {reason}", hint=hint)
        self.path = Path(path)
        self.reason = reason


class NotAModelError(ModelFileError):
    """A file named as a model whose content is plainly something else: a PNG or a PDF
    renamed ``.stl``, text that is no ASCII STL. Nothing in it is a model to fix, so it is
    not called a broken model (``rejected 1 file``). ``looks_like`` is what its bytes show it
    is (``"a PNG image"``), None when only that it is no model is known."""

    def __init__(self, path: Path | str, reason: str, *, looks_like: str | None,
                 hint: str | None = None) -> None:
        super().__init__(path, reason, hint=hint)
        self.looks_like = looks_like


class SourceCopyError(PipelineError):
    """A node could not make a true local copy of a shared source file: the copy failed,
    or its content hash is not the one the file was claimed under."""


class SidecarError(PipelineError):
    """A hot-folder sidecar file (``part.json``/``part.yaml`` beside ``part.stl``) cannot be used:
    unreadable, not a mapping, an unknown field, a value of the wrong type. The hint is
    required: the hot folder's note quotes it as what to fix."""

    def __init__(
        self, path: Path | str, reason: str, *, hint: str, line: int | None = None,
        column: int | None = None,
    ) -> None:
        # A problem at a key or value is shown where recipe errors are: file:line:col.
        where = f"{path}:{line}:{column}" if line is not None and column is not None else path
        super().__init__(f"{where}: {reason}", hint=hint)
        self.path = Path(path)
        self.reason = reason
        self.line = line
        self.column = column


class PlanningError(PipelineError):
    """Models cannot be grouped into builds as the recipe asks."""


class ModelTooLargeError(PlanningError):
    """A model is larger than the build volume of the recipe's machine, in any orientation tried."""

    def __init__(
        self,
        path: Path | str,
        size_mm: tuple[float, float, float],
        build_volume_mm: tuple[float, float, float],
        machine_type: str,
    ) -> None:
        bx, by, bz = build_volume_mm
        super().__init__(
            f"{path}: model is {millimetres(size_mm)}, larger than the "
            f"{bx:.0f} x {by:.0f} x {bz:.0f} mm build volume of {machine_type}",
            hint="scale or split the model, or use a recipe for a larger machine",
        )
        self.path = Path(path)
        self.size_mm = size_mm
        self.build_volume_mm = build_volume_mm
        self.machine_type = machine_type


class LabelDoesNotFitError(PlanningError):
    """A label's text is wider or taller than the face its placement rule names, even at the
    smallest font the rule allows; the recipe's ``fit`` decides whether that fails the model."""


class StepGraphError(PipelineError):
    """A step graph cannot be ordered: a cycle, or a step depending on one that is absent."""

    def __init__(self, message: str, *, steps: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.steps = tuple(steps)


@dataclass(frozen=True)
class RequestInfo:
    """What was sent, kept on API errors so a log line can say which call failed.

    ``operation`` is the contract's id of the request sent; ``waited_for``, for a status read
    of a long operation (``getOperation``), the operation it waits for: a person knows the
    step (``autoSupport``), not the endpoint the client polls it with."""

    method: str
    url: str
    operation: str = ""
    waited_for: str = ""

    @property
    def named(self) -> str:
        """The operation a person is told of: the one waited for, else the one sent."""
        return self.waited_for or self.operation

    def __str__(self) -> str:
        if self.waited_for:
            return f"{self.waited_for} (polled with {self.method} {self.url})"
        name = f" ({self.operation})" if self.operation else ""
        return f"{self.method} {self.url}{name}"


class ApiError(PipelineError):
    """Talking to a PreFormServer over the Local API failed."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status_code: int | None = None,
        code: str | None = None,
        server_message: str | None = None,
        body: Any = None,
        hint: str | None = None,
    ) -> None:
        where = f"{request}: " if request else ""
        super().__init__(where + message, hint=hint)
        #: What went wrong without the request it went wrong in: a build's reason names the
        #: step and the server in words of its own (executor/attempt_reason.py).
        self.said = message
        self.request = request
        self.status_code = status_code
        self.code = code
        self.server_message = server_message
        self.body = body


class TransientApiError(ApiError):
    """The server failed, not the input: the same request may succeed on another server."""


class ServerUnreachableError(TransientApiError):
    """The connection was refused, reset or broken before an answer arrived."""


class ServerTimeoutError(TransientApiError):
    """No answer before the deadline: the server is hung or overloaded."""


class ServerInternalError(TransientApiError):
    """The server answered with a 5xx status."""


class ServerBusyError(ServerInternalError):
    """The server, or a proxy in front of it, answered 429 or 503: too busy or unavailable
    for now. ``retry_after_s`` is its ``Retry-After`` (None: it gave none): longer than the
    request could wait, or still asked after the request was sent again as often as it may be
    (retryafter.py)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None,
                 **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after_s = retry_after_s


class SceneLostError(ServerInternalError):
    """The server no longer has the scene a request named: it restarted since it made it.
    Nothing was done to the scene; the build starts again."""


class ImportNotAppliedError(TransientApiError):
    """The server reported a successful import but the scene gained no model."""


class PermanentApiError(ApiError):
    """The server refused this input: retrying it anywhere gives the same answer."""


class RequestRejectedError(PermanentApiError):
    """The server answered 4xx; ``code`` and ``server_message`` hold its ErrorModel."""


class OperationFailedError(PermanentApiError):
    """An asynchronous operation finished with status FAILED."""


class UnsupportedApiVersionError(PermanentApiError):
    """The server speaks an API version outside the range this client supports."""


class ServerProcessError(PipelineError):
    """A PreFormServer process could not be started or died; carries exit code and stderr."""

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str] = (),
        exit_code: int | None = None,
        output_tail: str = "",
        hint: str | None = None,
    ) -> None:
        text = message
        if exit_code is not None:
            text += f" (exit code {exit_code})"
        if output_tail:
            text += f"; last output: {output_tail.strip()[-500:]}"
        super().__init__(text, hint=hint)
        self.command = tuple(command)
        self.exit_code = exit_code
        self.output_tail = output_tail


class ServerStartTimeoutError(ServerProcessError):
    """The process did not print READY FOR INPUT within the start-up timeout."""


class PortInUseError(ServerProcessError):
    """The server could not bind its port because another process holds it."""


#: How a server says that it refuses to start for a reason that starting it again will not change
#: (its fleet folder in use by another fleet): a stdout line beginning with this, before it
#: exits. Written here, the one module both the simulator and the pool may read.
REFUSAL_PREFIX: Final = "error: refused to start: "


class ServerRefusedError(ServerProcessError):
    """The server refused to start for good (it said so with :data:`REFUSAL_PREFIX`, or its
    program cannot be run): the pool retires it at once instead of retrying."""


class PoolExhaustedError(ServerProcessError):
    """Every server of the pool is retired; the message lists each one's reason."""


class LeaseTimeoutError(PipelineError):
    """No server of the pool became free within the caller's lease timeout."""


class StoreError(PipelineError):
    """The job store cannot be opened, migrated, read or written."""

    #: Whether the error says the store was away (a database restart, a lock held too long,
    #: a full disk): the work it interrupted is sound and may be done again once the store
    #: answers. The subclasses below are answers, not outages: the store was reached and said
    #: no, so doing the work again would meet the same refusal.
    outage: ClassVar[bool] = True


class InvalidTransitionError(StoreError):
    """The state table does not allow moving a job (or build) from one state to another."""

    outage: ClassVar[bool] = False

    def __init__(
        self, what: str, from_state: str, to_state: str, *, hint: str | None = None
    ) -> None:
        super().__init__(f"{what}: cannot go from {from_state} to {to_state}", hint=hint)
        self.what = what
        self.from_state = from_state
        self.to_state = to_state


class StoreConflictError(StoreError):
    """A compare-and-set transition lost: the job (or build) is no longer in the expected state.

    Someone else (the daemon, a ``jobs`` command) changed it first; re-read it and decide again.
    """

    outage: ClassVar[bool] = False

    def __init__(
        self, what: str, expected: Sequence[str], actual: str, *, hint: str | None = None
    ) -> None:
        wanted = " or ".join(expected)
        super().__init__(
            f"{what} is {actual}, expected {wanted}",
            hint=hint or "it changed meanwhile; read it again and decide again",
        )
        self.what = what
        self.expected = tuple(expected)
        self.actual = actual



class StoreNotFoundError(StoreError):
    """The store holds no job or build of the id asked for. An answer, not an outage: the
    dashboard says "no such build" for it, and for an outage that the store cannot be read
    (it said "no such build" for both). ``what`` is the answer without the store's
    ``location`` (a file path, a database URL): a browser is told ``what`` only."""

    outage: ClassVar[bool] = False

    def __init__(self, what: str, *, location: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(f"{location}: {what}" if location else what, hint=hint)
        self.what = what
        self.location = location


class NotBatchableError(StoreError):
    """A build was asked for a job that is not free to batch: another build has it (on a
    farm, another node adopted it meanwhile: docs/multi-node.md), or it moved on (cancelled,
    failed). An answer, not an outage: asking again gives the same refusal, and the job is
    someone else's to print. ``build_id``: the build that has it (None: it has none)."""

    outage: ClassVar[bool] = False

    def __init__(self, job_id: int, state: str, build_id: int | None) -> None:
        where = f" in build {build_id}" if build_id is not None else ""
        super().__init__(
            f"job {job_id} is {state}{where}: only processing jobs without a build can be "
            "batched",
            hint="re-read the jobs; another process may have moved them",
        )
        self.job_id = job_id
        self.state = state
        self.build_id = build_id


class LeaseLostError(StoreError):
    """A node's claim on a build is gone: its lease ran out (on the database's clock), or
    another node reclaimed the build at a newer epoch. The node must stop that build now."""

    outage: ClassVar[bool] = False

    def __init__(self, build_id: int, owner: str, epoch: int, *, why: str) -> None:
        super().__init__(
            f"build {build_id}: node {owner} no longer holds it (epoch {epoch}): {why}",
            hint="stop working on the build and give its server back; the node that holds "
            "it now (see `preform-pipeline nodes`) carries on",
        )
        self.build_id = build_id
        self.owner = owner
        self.epoch = epoch

class StoreLockedError(StoreError):
    """Another daemon holds the store's lock; names the holder so a person can find it."""

    outage: ClassVar[bool] = False

    def __init__(
        self, message: str, *, lock_path: Path, host: str, pid: int, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.lock_path = lock_path
        self.host = host
        self.pid = pid


class StoreUnavailableError(StoreError):
    """The store's database did not let it in, or cut it off: no server answered, none had a
    connection free, it refused the login, or the URL cannot work
    (:mod:`preform_pipeline.store.pgerrors` classifies which: ``kind``). ``waits``: whether a
    wait may end it; a starting ``watch`` waits for those only.

    An outage whatever its kind: the work it interrupted never reached the store and may be
    done again once the store lets the node in (a running daemon whose password was changed
    keeps its jobs and tries again, rather than failing them)."""

    def __init__(self, message: str, *, hint: str, kind: str, waits: bool) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.waits = waits


class NodeIdInUseError(StoreError):
    """A daemon of this node id still beats on the shared store (another PC, or another live
    process of this one): two daemons with one id would take each other's builds as a
    restarted node's own. Names the holder so a person can find it, and when the id is free
    if that daemon is gone after all (``free_in_s``: its beat a lease old). ``running``: the
    holder is proven to run (a process of this host and instance, liveness.py); else only
    its beat says so, and ``heartbeat_at`` (the database's time of it) tells a waiting
    starter whether it beats again."""

    outage: ClassVar[bool] = False

    def __init__(self, node_id: str, host: str, pid: int | None, beat_age_s: float, *,
                 free_in_s: float, running: bool, heartbeat_at: object = None) -> None:
        process = f"host {host}" if pid is None else f"host {host}, pid {pid}"
        super().__init__(
            f"node id {node_id!r} is in use by a running daemon ({process}, last heartbeat "
            f"{beat_age_s:.0f} s ago)",
            hint="give each daemon its own store.node_id (or PREFORM_PIPELINE_NODE_ID); if "
            f"that daemon is gone, the id is free in {max(free_in_s, 0.0):.0f} s, once its "
            "heartbeat is a lease old (store.lease_s; `preform-pipeline nodes` shows it "
            "silent)",
        )
        self.node_id = node_id
        self.host = host
        self.pid = pid
        self.free_in_s = free_in_s
        self.running = running
        self.heartbeat_at = heartbeat_at


class CloudError(PipelineError):
    """Talking to the Formlabs Web API (Dashboard) failed; carries the request and the answer.

    ``body`` is the decoded answer (JSON where it parsed, else text); it never holds the
    request's credentials, which are not part of any answer. ``retry_after_s``: seconds until
    a request may be sent again, when that is known (a server's ``Retry-After`` on a 429 or a
    503, the limiter's hold, a spent hourly budget); None otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status_code: int | None = None,
        body: Any = None,
        hint: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        where = f"{request}: " if request else ""
        status = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(where + message + status, hint=hint)
        self.request = request
        self.status_code = status_code
        self.body = body
        self.retry_after_s = retry_after_s


class CloudAuthError(CloudError):
    """The client credentials were refused, or the Web API refused a freshly fetched token."""


class CloudRateLimitError(CloudError):
    """The request budget is spent and the caller asked not to wait for it to refill."""


class CloudUnavailableError(CloudError):
    """The Web API could not be reached, timed out, or answered with a 5xx status (a 503's
    ``Retry-After``, when it gave one, in ``retry_after_s``)."""


@dataclass(frozen=True)
class Decision:
    """A person's recorded decision on a held build: ``decision`` (approved / rejected), ``by``
    whom, and ``at`` (None: not recorded)."""

    decision: str
    by: str
    at: datetime | None


class DecidedAlreadyError(PipelineError):
    """A decision on a build that is no longer awaiting approval. ``decided`` is the
    decision the store records (who and when), None when none was taken (a cancelled case):
    a second operator is told who was first, not only the state it left."""

    def __init__(self, message: str, *, decided: Decision | None, hint: str | None = None
                 ) -> None:
        if decided is not None:
            when = "" if decided.at is None else f" at {utc_moment(decided.at)}"
            message += f"; {decided.decision} by {decided.by}{when}"
        super().__init__(message, hint=hint)
        self.decided = decided


class PrinterSelectionError(PipelineError):
    """No printer fits the ``printer: auto`` policy; ``reasons`` says what each one lacked.

    ``reasons`` maps a printer (serial or device id) to why it was passed over: another machine
    type, another material loaded, offline, printing, not ready.
    """

    def __init__(
        self,
        machine_type: str,
        material_code: str,
        reasons: Sequence[tuple[str, str]],
        *,
        source: str = "",
        hint: str | None = None,
    ) -> None:
        where = f" ({source})" if source else ""
        if reasons:
            listed = "; ".join(f"{name}: {why}" for name, why in reasons)
            text = (
                f"no printer can take a {machine_type} print in {material_code} now{where}: "
                f"{listed}"
            )
        else:
            text = (
                f"no printer can take a {machine_type} print in {material_code}{where}: "
                "no printers are listed"
            )
        super().__init__(
            text,
            hint=hint
            or "load the material or free a printer of that type, or name a printer or a "
            "Fleet Control group (fleet_group:) in the recipe's print step",
        )
        self.machine_type = machine_type
        self.material_code = material_code
        self.reasons = tuple(reasons)


class PrintLookupError(PipelineError):
    """A send was interrupted and whether the print exists cannot be found out.

    The print is never sent again blindly: a person checks the printer (or Dashboard) first.
    """

    def __init__(self, job_key: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{job_key}: {message}",
            hint=hint
            or "check the printer or Formlabs Dashboard for a job named with this key; configure "
            "Web API credentials so the pipeline can look it up itself",
        )
        self.job_key = job_key
