"""``PreFormClient``: the synchronous Local API client the executor drives, one per server.

Calls
    One method per contract operation (deprecated scene-less paths are not used). Each takes
    ``timeout=`` (seconds, per HTTP request; ``None`` means the client's default,
    :data:`DEFAULT_REQUEST_TIMEOUT_S`). Long operations also take ``deadline=`` and
    ``progress=``.

Long operations
    import, scan-to-model, load/save .form, screenshot, auto-orient/support/layout/pack, hollow,
    label, drain holes, print validation, print-time estimate, print and device discovery are
    sent with ``?async=true`` (unless the client was built with ``async_operations=False``) and
    polled on ``/operations/{id}/`` (see :mod:`preform_pipeline.api.operations`). Built with
    ``async_operations=False`` the client sends each as one blocking request instead (no
    polls: the cheapest way when progress within the operation is not needed), whose wait
    ends at the deadline or at the request timeout, whichever comes first; the server
    itself ends any request after 10 minutes. ``deadline`` is an **absolute time on the
    client's clock** (the monotonic clock of the injected
    :class:`~preform_pipeline.clock.Clock`) so that one build deadline can be passed to every
    step; ``client.deadline_in(seconds)`` makes one. ``None`` means
    :data:`DEFAULT_OPERATION_TIMEOUT_S` from the call. Past the deadline the call raises
    ``ServerTimeoutError``. ``progress`` receives 0.0-1.0 values in order.

API version
    Before its first call the client reads ``GET /`` once and refuses servers outside
    ``supported_versions`` (:data:`~preform_pipeline.api.versions.DEFAULT_SUPPORTED_API_VERSIONS`)
    with ``UnsupportedApiVersionError``. ``check_version()`` does it explicitly;
    ``check_version_on_first_use=False`` turns the lazy check off.

Imports
    Real servers have answered an import with success and added nothing. With
    ``verify_imports=True`` (the default) ``import_model`` reads the scene before and after and
    raises ``ImportNotAppliedError`` (transient) unless a model was added and the returned id
    is in the scene.

Paths
    Every file path must be absolute (``ValueError`` otherwise, before anything is sent); it is
    mapped to the server's path by ``path_mapper`` (default: the resolved local path).

The client is safe to share between threads (each request in flight has its own connection),
but the Local API is not: never send two operations on one scene at the same time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from os import PathLike
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import quote, unquote

import httpx

from preform_pipeline.api._http import ApiResponse, HttpSession
from preform_pipeline.api._parse import MalformedResponse, as_object, req_str
from preform_pipeline.api.enums import RepairBehavior
from preform_pipeline.api.models import (
    ActionReport,
    ApiVersion,
    Device,
    DrainHoleResult,
    FpsSettings,
    Interferences,
    MaterialCatalogue,
    ModelInfo,
    Operation,
    PrintResult,
    PrintTimeEstimate,
    PrintValidation,
    ReplaceResult,
    ScanToModelResult,
    Scene,
    SceneSettings,
    User,
    WebAuthTokens,
)
from preform_pipeline.api.operations import (
    DEFAULT_POLL_POLICY,
    DEFAULT_TRANSIENT_FAILURE_CODES,
    PollPolicy,
    ProgressCallback,
    wait_for_operation,
)
from preform_pipeline.api.options import (
    UNSET,
    AutoLayoutOptions,
    AutoOrientOptions,
    AutoPackOptions,
    AutoSupportOptions,
    DrainHoleOptions,
    HollowOptions,
    ImportOptions,
    LabelOptions,
    ModelUpdate,
    PackAndCageOptions,
    PrintOptions,
    ScanToModelOptions,
    ScreenshotOptions,
    UnsetType,
)
from preform_pipeline.api.paths import (
    PathMapper,
    check_saved_path,
    default_path_mapper,
    to_server_path,
)
from preform_pipeline.api.versions import (
    CONTRACT_API_VERSION,
    DEFAULT_SUPPORTED_API_VERSIONS,
    VersionRange,
    no_version_endpoint,
    parse_version,
    require_supported,
)
from preform_pipeline.clock import SYSTEM_CLOCK, Clock
from preform_pipeline.errors import (
    ApiError,
    ImportNotAppliedError,
    RequestInfo,
    RequestRejectedError,
    SceneLostError,
    ServerInternalError,
    ServerTimeoutError,
)
from preform_pipeline.logging import get_logger
from preform_pipeline.retryafter import WaitTally
from preform_pipeline.wording import counted

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_HOST",
    "DEFAULT_OPERATION_TIMEOUT_S",
    "DEFAULT_PORT",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "PreFormClient",
]

DEFAULT_HOST: Final = "127.0.0.1"
#: The port the Formlabs documentation uses for PreFormServer.
DEFAULT_PORT: Final = 44388
DEFAULT_BASE_URL: Final = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"

#: PreFormServer gives up on a request after 600 s; waiting a little longer lets its own
#: timeout answer arrive instead of a client-side timeout that hides what happened.
DEFAULT_REQUEST_TIMEOUT_S: Final = 610.0

#: Asynchronous operations are not bound by the server's 600 s request limit, so a long
#: auto-support may legitimately run past it; a hung one is still noticed in 15 minutes.
DEFAULT_OPERATION_TIMEOUT_S: Final = 900.0

_T = TypeVar("_T")

_HINT_CONTRACT = "the server's answer breaks the Local API contract; retry on another server"

log = get_logger(__name__)


#: A request path that names one scene (its id as quoted by ``_seg``).
_SCENE_PATH: Final = re.compile(r"/scene/([^/]+)/")
#: The error code with which a server refuses a request naming a scene it does not have.
SCENE_NOT_FOUND: Final = "SCENE_NOT_FOUND"

#: The characters ``quote(..., safe="")`` never changes.
_PLAIN_SEGMENT: Final = re.compile(r"[A-Za-z0-9_.\-~]+")


def _seg(value: str) -> str:
    """One path segment: ids are quoted so that an odd id cannot change the path."""
    if not value:
        raise ValueError("an id in a request path must not be empty")
    # An id of letters, digits and "_.-~" (every server id seen) is what quote() returns.
    if _PLAIN_SEGMENT.fullmatch(value):
        return value
    return quote(value, safe="")


def _restated(kind: type[ApiError], exc: ApiError, message: str, hint: str) -> ApiError:
    """``exc`` said again as a ``kind`` with its own words: what was sent and answered kept."""
    return kind(
        message,
        request=exc.request,
        status_code=exc.status_code,
        code=exc.code,
        server_message=exc.server_message,
        body=exc.body,
        hint=hint,
    )


def _ignore(_data: Any) -> None:
    return None


class PreFormClient:
    """Typed client for one PreFormServer's Local API (contract 0.9.12).

    ``transport`` is any ``httpx.BaseTransport`` (tests pass ``httpx.MockTransport``);
    ``clock`` drives deadlines and polling (its ``monotonic`` and ``sleep``); tests pass a
    :class:`~preform_pipeline.clock.ManualClock` so nothing really waits.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT_S,
        path_mapper: PathMapper = default_path_mapper,
        async_operations: bool = True,
        poll_policy: PollPolicy = DEFAULT_POLL_POLICY,
        supported_versions: VersionRange = DEFAULT_SUPPORTED_API_VERSIONS,
        check_version_on_first_use: bool = True,
        verify_imports: bool = True,
        transient_failure_codes: Collection[str] = DEFAULT_TRANSIENT_FAILURE_CODES,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if timeout <= 0 or operation_timeout <= 0:
            raise ValueError("timeout and operation_timeout must be positive numbers of seconds")
        self._http = HttpSession(base_url, transport=transport, clock=clock)
        self._timeout = timeout
        self._operation_timeout = operation_timeout
        self._path_mapper = path_mapper
        self._async = async_operations
        self._poll_policy = poll_policy
        self._supported = supported_versions
        self._check_on_first_use = check_version_on_first_use
        self._verify_imports = verify_imports
        self._transient_codes = frozenset(transient_failure_codes)
        self._clock = clock.monotonic
        self._sleep = clock.sleep
        self._version_lock = threading.Lock()
        self._api_version: ApiVersion | None = None
        # The operations this client started, by id, newest last, each with its Retry-After
        # tally (the step's name, its waits): wait_for_operation(id), given only an id (a
        # step's poll that ran out of time, waited for again), names the step, as the step's
        # own polling did, and goes on counting its waits against the same total. Threads
        # share the client: changed under the lock.
        self._started: dict[str, WaitTally] = {}
        self._started_lock = threading.Lock()

    @classmethod
    def for_port(cls, port: int, *, host: str = DEFAULT_HOST, **kwargs: Any) -> PreFormClient:
        """A client for ``http://{host}:{port}``; ``kwargs`` as for the constructor."""
        return cls(f"http://{host}:{port}", **kwargs)

    # ------------------------------------------------------------------ lifecycle and helpers

    @property
    def base_url(self) -> str:
        """The server's url as this client's errors name it (a password in it hidden)."""
        return self._http.base_url

    @property
    def api_version(self) -> ApiVersion | None:
        """The version read by the last successful check, ``None`` before one."""
        return self._api_version

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PreFormClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PreFormClient({self.base_url!r})"

    def deadline_in(self, seconds: float) -> float:
        """The absolute deadline ``seconds`` from now on this client's clock."""
        return self._clock() + seconds

    def server_path(self, path: str | PathLike[str], *, what: str = "file") -> str:
        """The path string this client would send for ``path`` (``ValueError`` if relative)."""
        return to_server_path(path, self._path_mapper, what=what)

    def _saved_path(self, file: str | PathLike[str], *, what: str) -> str:
        """The path the server is sent for a file it saves, refused before sending when a
        Windows server could not write it (:func:`~.paths.check_saved_path`)."""
        path = self.server_path(file, what=what)
        check_saved_path(path, file, what=what)
        return path

    def _request_timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self._timeout
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        return timeout

    def _deadline(self, deadline: float | None) -> float:
        return self._clock() + self._operation_timeout if deadline is None else deadline

    def _bounded(self, timeout: float, deadline: float) -> float:
        """A request timeout that also ends at ``deadline`` (may be <= 0: nothing is sent)."""
        return min(timeout, deadline - self._clock())

    def _info(self, method: str, path: str, operation: str, waited_for: str = "") -> RequestInfo:
        return RequestInfo(method=method, url=self.base_url + path, operation=operation,
                           waited_for=waited_for)

    def _parse(self, parser: Callable[[Any], _T], data: Any, response: ApiResponse) -> _T:
        try:
            return parser(data)
        except MalformedResponse as exc:
            raise ServerInternalError(
                f"unreadable answer: {exc}",
                request=response.request,
                status_code=response.status_code,
                body=data,
                hint=_HINT_CONTRACT,
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        operation: str,
        parser: Callable[[Any], _T],
        *,
        timeout: float | None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> _T:
        """One blocking request: version check, send, parse."""
        seconds = self._request_timeout(timeout)
        if self._check_on_first_use and self._api_version is None:  # no call per request
            self._ensure_version(seconds)
        response = self._request(
            method, path, operation=operation, timeout=seconds, json_body=body, params=params
        )
        if response.status_code == httpx.codes.ACCEPTED:
            # An operation left running where the call waits for its result: its answer (an
            # operation id) read as the result would pass a step the server has not done.
            raise ServerInternalError(
                f"server answered 202 (an operation it runs on) to {operation}, which waits "
                "for its result and asked for no operation",
                request=response.request,
                status_code=response.status_code,
                body=response.body,
                hint=_HINT_CONTRACT,
            )
        return self._parse(parser, response.body, response)

    def _request(self, method: str, path: str, *, operation: str, **sent: Any) -> ApiResponse:
        """``HttpSession.request``, with the refusals that are not about the input told apart:
        a scene the server no longer has (it restarted) and an endpoint it does not have."""
        try:
            return self._http.request(method, path, operation=operation, **sent)
        except RequestRejectedError as exc:
            raise self._refusal(exc, method, path, operation) from exc

    def _refusal(
        self, exc: RequestRejectedError, method: str, path: str, operation: str
    ) -> ApiError:
        scene = _SCENE_PATH.match(path)
        if scene is not None and (
            exc.code == SCENE_NOT_FOUND
            or (exc.status_code == httpx.codes.NOT_FOUND and operation == "getScene")
        ):
            # Every server has getScene: its 404 (or anyone's SCENE_NOT_FOUND) for a scene
            # this client made means the server lost it, restarted since. Retried, the build
            # starts again (here or elsewhere); refused for good, it failed for nothing.
            return _restated(
                SceneLostError, exc,
                f"the server no longer has scene {unquote(scene.group(1))} (was it restarted?)",
                "the build starts again from its last checkpoint, on this or another server",
            )
        if exc.status_code == httpx.codes.METHOD_NOT_ALLOWED or (
            exc.status_code == httpx.codes.NOT_FOUND and exc.code in (None, "NOT_FOUND")
        ):
            known = self._api_version.version if self._api_version is not None else None
            if known is not None and parse_version(known) >= parse_version(CONTRACT_API_VERSION):
                why = f", although it speaks Local API {known}"
                hint = "check the server address: a proxy in front of PreFormServer may not " \
                    "pass this path"
            else:
                speaks = f"it speaks Local API {known}," if known else "its Local API may be"
                why = f": {speaks} older than the {CONTRACT_API_VERSION} this client is " \
                    "written against"
                hint = f"update PreFormServer to a release with Local API " \
                    f"{CONTRACT_API_VERSION} or later"
            return _restated(
                RequestRejectedError, exc,
                f"the server has no {method} {path} endpoint ({operation}; HTTP "
                f"{exc.status_code}){why}",
                hint,
            )
        return exc

    def _long(
        self,
        method: str,
        path: str,
        operation: str,
        parser: Callable[[Any], _T],
        *,
        timeout: float | None,
        deadline: float,
        progress: ProgressCallback | None,
        body: Any = None,
    ) -> _T:
        """A long operation: ``?async=true`` plus polling, or one blocking request."""
        seconds = self._request_timeout(timeout)
        if self._check_on_first_use and self._api_version is None:
            # The check's own time counts against the deadline: the bound is read after it.
            self._ensure_version(self._bounded(seconds, deadline))
        params = {"async": "true"} if self._async else None
        bounded = self._bounded(seconds, deadline)
        # The operation's Retry-After waits, its request's and its status reads', together.
        tally = WaitTally(operation)
        try:
            response = self._request(
                method,
                path,
                operation=operation,
                timeout=bounded,
                json_body=body,
                params=params,
                tally=tally,
            )
        except ServerTimeoutError as exc:
            if self._async or not 0 < bounded < seconds or exc.status_code is not None:
                raise
            # A blocking call waits for the operation itself: its deadline, not the request
            # limit, ended the wait, as it ends polling (same words, same error).
            raise ServerTimeoutError(
                f"{operation} was still running when its deadline passed after "
                f"{bounded:.3g} s",
                request=exc.request,
                hint=exc.hint,
            ) from exc
        if response.status_code != httpx.codes.ACCEPTED:
            # Answered synchronously (async off, or a server that ignores ?async=true).
            result = self._parse(parser, response.body, response)
            if progress is not None:
                progress(1.0)
            return result
        operation_id = self._parse(_operation_id, response.body, response)
        self._remember(operation_id, tally)
        finished = wait_for_operation(
            partial(self._fetch_operation, waited_for=operation, tally=tally),
            operation_id,
            deadline=deadline,
            clock=self._clock,
            sleep=self._sleep,
            request=response.request,
            request_timeout=seconds,
            policy=self._poll_policy,
            progress=progress,
            transient_codes=self._transient_codes,
        )
        return self._parse(parser, finished.result, response)

    def _remember(self, operation_id: str, tally: WaitTally) -> None:
        """Keep ``operation_id``'s tally (what started it, its waits so far); the oldest of
        :data:`_REMEMBERED` forgotten. Under the lock: another thread's insertion between
        ``iter`` and ``next`` would raise "dictionary changed size during iteration" after
        the operation was accepted, losing its id."""
        with self._started_lock:
            if len(self._started) >= _REMEMBERED:
                del self._started[next(iter(self._started))]
            self._started[operation_id] = tally

    def _fetch_operation(self, operation_id: str, timeout: float, deadline: float, *,
                         waited_for: str, tally: WaitTally) -> Operation:
        """One status read of ``operation_id``; its errors and events name ``waited_for``,
        the operation that started it (``autoSupport``), with this read's endpoint beside;
        its Retry-After waits count in ``tally``, the operation's."""
        try:
            # A 503's Retry-After (the proxy in maintenance) is waited as long as the operation
            # may take: bounded by the status read's own 60 s, one of 120 s abandoned an
            # operation still running with 14 minutes of its time left (session 44).
            response = self._http.request(
                "GET",
                f"/operations/{_seg(operation_id)}/",
                operation="getOperation",
                timeout=timeout,
                wait_until=(deadline, "the operation's"),
                waited_for=waited_for,
                tally=tally,
            )
        except RequestRejectedError as exc:
            if exc.status_code != httpx.codes.NOT_FOUND:
                raise
            # The server forgot an operation it accepted: it restarted, and the scene is gone too.
            raise _restated(
                ServerInternalError, exc,
                f"the server no longer knows operation {operation_id} (was it restarted?)",
                "rebuild the scene on this or another server",
            ) from exc
        return self._parse(Operation.from_json, response.body, response)

    # ------------------------------------------------------------------ API version

    def get_api_version(self, *, timeout: float | None = None) -> ApiVersion:
        """``GET /``: the Local API version the server speaks (no version check first)."""
        return self._read_version(self._request_timeout(timeout))

    def check_version(self, *, timeout: float | None = None) -> ApiVersion:
        """Read the server's API version; ``UnsupportedApiVersionError`` if out of range."""
        return self._check_version(self._request_timeout(timeout))

    def _read_version(self, seconds: float) -> ApiVersion:
        try:
            response = self._http.request("GET", "/", operation="getApiVersion", timeout=seconds)
        except RequestRejectedError as exc:
            if exc.status_code not in (httpx.codes.NOT_FOUND, httpx.codes.METHOD_NOT_ALLOWED):
                raise
            raise no_version_endpoint(
                exc.status_code, self._supported, request=exc.request
            ) from exc
        return self._parse(ApiVersion.from_json, response.body, response)

    def _check_version(self, seconds: float) -> ApiVersion:
        version = self._read_version(seconds)
        require_supported(
            version.version, self._supported, request=self._info("GET", "/", "getApiVersion")
        )
        self._api_version = version
        log.debug("api_version_checked", base_url=self.base_url, version=version.version)
        return version

    def _ensure_version(self, timeout: float) -> None:
        if not self._check_on_first_use or self._api_version is not None:
            return
        with self._version_lock:
            if self._api_version is None:
                # A failed check is not remembered: an unreachable server may come back, and an
                # unsupported one keeps failing the same way on every call.
                self._check_version(timeout)

    # ------------------------------------------------------------------ account

    def login(self, username: str, password: str, *, timeout: float | None = None) -> WebAuthTokens:
        """Log the server in to Formlabs Web Services with an account's credentials."""
        body = {"username": username, "password": password}
        return self._call(
            "POST", "/login/", "login", WebAuthTokens.from_json, timeout=timeout, body=body
        )

    def login_with_token(self, access_token: str, *, timeout: float | None = None) -> WebAuthTokens:
        """Log the server in to Formlabs Web Services with an access token."""
        body = {"access_token": access_token}
        return self._call(
            "POST", "/login/", "login", WebAuthTokens.from_json, timeout=timeout, body=body
        )

    def logout(self, *, timeout: float | None = None) -> None:
        self._call("POST", "/logout/", "logout", _ignore, timeout=timeout)

    def get_user(self, *, timeout: float | None = None) -> User | None:
        """The logged-in account, or ``None`` when nobody is logged in (the server's 404)."""
        try:
            return self._call("GET", "/user/", "getUser", User.from_json, timeout=timeout)
        except RequestRejectedError as exc:
            if exc.status_code == httpx.codes.NOT_FOUND:
                return None
            raise

    # ------------------------------------------------------------------ materials and scenes

    def list_materials(self, *, timeout: float | None = None) -> MaterialCatalogue:
        return self._call(
            "GET", "/list-materials/", "listMaterials", MaterialCatalogue.from_json, timeout=timeout
        )

    def _settings_body(self, settings: SceneSettings | FpsSettings) -> dict[str, Any]:
        if isinstance(settings, FpsSettings):
            return {"fps_file": self.server_path(settings.fps_file, what="fps_file")}
        return settings.to_body()

    def create_scene(
        self, settings: SceneSettings | FpsSettings, *, timeout: float | None = None
    ) -> Scene:
        """A new empty scene; its ``id`` is what every scene call takes."""
        body = self._settings_body(settings)
        return self._call(
            "POST", "/scene/", "createScene", _scene_with_id, timeout=timeout, body=body
        )

    def create_default_scene(
        self, settings: SceneSettings | FpsSettings, *, timeout: float | None = None
    ) -> Scene:
        """(Re)create the server's single global scene, addressed as scene id ``"default"``."""
        body = self._settings_body(settings)
        return self._call(
            "POST",
            "/scene/default/",
            "createDefaultScene",
            Scene.from_json,
            timeout=timeout,
            body=body,
        )

    def delete_default_scene(self, *, timeout: float | None = None) -> Scene:
        """Replace the default scene with a blank one, which is returned."""
        return self._call(
            "DELETE", "/scene/default/", "deleteDefaultScene", Scene.from_json, timeout=timeout
        )

    def get_scene(self, scene_id: str, *, timeout: float | None = None) -> Scene:
        return self._call(
            "GET", f"/scene/{_seg(scene_id)}/", "getScene", Scene.from_json, timeout=timeout
        )

    def get_scene_model_ids(
        self, scene_id: str, *, timeout: float | None = None
    ) -> tuple[str, ...]:
        """The ids of the scene's models, in the scene's order: the same request as
        :meth:`get_scene`, with only the ids read from the answer (a check that imports
        arrived needs no more; reading every model's fields cost the runner CPU)."""
        return self._call(
            "GET", f"/scene/{_seg(scene_id)}/", "getScene", _scene_model_ids, timeout=timeout
        )

    def get_all_scenes(self, *, timeout: float | None = None) -> tuple[Scene, ...]:
        return self._call("GET", "/scenes/", "getAllScenes", _scene_list, timeout=timeout)

    def update_scene(
        self, scene_id: str, settings: SceneSettings | FpsSettings, *, timeout: float | None = None
    ) -> Scene:
        """Change a scene's printer, material or print settings."""
        body = self._settings_body(settings)
        return self._call(
            "PUT",
            f"/scene/{_seg(scene_id)}/",
            "updateScene",
            Scene.from_json,
            timeout=timeout,
            body=body,
        )

    def delete_scene(self, scene_id: str, *, timeout: float | None = None) -> None:
        self._call("DELETE", f"/scene/{_seg(scene_id)}/", "deleteScene", _ignore, timeout=timeout)

    def load_form(
        self,
        file: str | PathLike[str],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Scene:
        """A new scene loaded from a .form file."""
        body = {"file": self.server_path(file, what=".form file")}
        return self._long(
            "POST",
            "/load-form/",
            "loadFormFile",
            _scene_with_id,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def save_form(
        self,
        scene_id: str,
        file: str | PathLike[str],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        body = {"file": self._saved_path(file, what=".form file")}
        self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/save-form/",
            "saveFormFile",
            _ignore,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def save_screenshot(
        self,
        scene_id: str,
        file: str | PathLike[str],
        options: ScreenshotOptions | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Save a .png (or .webp, also for flyarounds) picture of the scene."""
        path = self._saved_path(file, what="screenshot file")
        if not path.endswith((".png", ".webp")):
            raise ValueError(f"screenshot file {path!r} must end in .png or .webp (lower case)")
        body = {"file": path, **(options.to_body() if options else {})}
        self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/save-screenshot/",
            "saveScreenshot",
            _ignore,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def save_fps_file(
        self, scene_id: str, file: str | PathLike[str], *, timeout: float | None = None
    ) -> None:
        """Save the scene's print settings to a .fps file."""
        path = self._saved_path(file, what=".fps file")
        if not path.endswith(".fps"):
            raise ValueError(f".fps file {path!r} must end in .fps (lower case)")
        self._call(
            "POST",
            f"/scene/{_seg(scene_id)}/save-fps-file/",
            "saveFpsFile",
            _ignore,
            timeout=timeout,
            body={"file": path},
        )

    # ------------------------------------------------------------------ models

    def import_model(
        self,
        scene_id: str,
        file: str | PathLike[str],
        options: ImportOptions | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> ModelInfo:
        """Import a model file; with ``verify_imports`` checks that the scene gained it."""
        body = {
            "file": self.server_path(file, what="model file"),
            **(options.to_body() if options else {}),
        }
        seconds = self._request_timeout(timeout)
        until = self._deadline(deadline)
        path = f"/scene/{_seg(scene_id)}/import-model/"
        before = self._scene_within(scene_id, seconds, until) if self._verify_imports else None
        model = self._long(
            "POST",
            path,
            "importModel",
            ModelInfo.from_json,
            body=body,
            timeout=seconds,
            deadline=until,
            progress=progress,
        )
        if before is not None:
            after = self._scene_within(scene_id, seconds, until)
            added = set(after.model_ids) - set(before.model_ids)
            if not added or model.id not in after.model_ids:
                raise ImportNotAppliedError(
                    f"importing {body['file']} answered success (model id {model.id!r}) but scene "
                    f"{scene_id} gained no such model "
                    f"({counted(len(before.models), 'model')} before, {len(after.models)} after)",
                    request=self._info("POST", path, "importModel"),
                    hint="retry the import, on another server if it happens again",
                )
        return model

    def _scene_within(self, scene_id: str, seconds: float, deadline: float) -> Scene:
        """get_scene as one step of an operation: its timeout also ends at ``deadline``."""
        bounded = self._bounded(seconds, deadline)
        self._ensure_version(bounded)
        response = self._request(
            "GET", f"/scene/{_seg(scene_id)}/", operation="getScene", timeout=bounded
        )
        return self._parse(Scene.from_json, response.body, response)

    def scan_to_model(
        self,
        scene_id: str,
        file: str | PathLike[str],
        options: ScanToModelOptions,
        *,
        files: Sequence[str | PathLike[str]] = (),
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> ScanToModelResult:
        """Turn a dental scan (``file``, plus ``files`` if given) into a solid model."""
        body: dict[str, Any] = {"file": self.server_path(file, what="scan file")}
        if files:
            body["files"] = [self.server_path(f, what="scan file") for f in files]
        body.update(options.to_body())
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/scan-to-model/",
            "scanToModel",
            ScanToModelResult.from_json,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def get_model(self, scene_id: str, model_id: str, *, timeout: float | None = None) -> ModelInfo:
        return self._call(
            "GET",
            f"/scene/{_seg(scene_id)}/models/{_seg(model_id)}/",
            "getModel",
            ModelInfo.from_json,
            timeout=timeout,
        )

    def update_model(
        self, scene_id: str, model_id: str, update: ModelUpdate, *, timeout: float | None = None
    ) -> None:
        self._call(
            "POST",
            f"/scene/{_seg(scene_id)}/models/{_seg(model_id)}/",
            "updateModel",
            _ignore,
            timeout=timeout,
            body=update.to_body(),
        )

    def delete_model(self, scene_id: str, model_id: str, *, timeout: float | None = None) -> None:
        self._call(
            "DELETE",
            f"/scene/{_seg(scene_id)}/models/{_seg(model_id)}/",
            "deleteModel",
            _ignore,
            timeout=timeout,
        )

    def duplicate_model(
        self, scene_id: str, model_id: str, count: int = 1, *, timeout: float | None = None
    ) -> Scene:
        """Add ``count`` copies of a model; returns the scene with them."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        return self._call(
            "POST",
            f"/scene/{_seg(scene_id)}/models/{_seg(model_id)}/duplicate/",
            "duplicateModel",
            Scene.from_json,
            timeout=timeout,
            body={"count": count},
        )

    def replace_model(
        self,
        scene_id: str,
        model_id: str,
        file: str | PathLike[str],
        *,
        repair_behavior: RepairBehavior | UnsetType = UNSET,
        timeout: float | None = None,
    ) -> ReplaceResult:
        """Swap a model's mesh for another file, keeping its setup and supports."""
        body: dict[str, Any] = {"file": self.server_path(file, what="model file")}
        if repair_behavior is not UNSET:
            body.update(ImportOptions(repair_behavior=repair_behavior).to_body())
        return self._call(
            "POST",
            f"/scene/{_seg(scene_id)}/models/{_seg(model_id)}/replace/",
            "replaceModel",
            ReplaceResult.from_json,
            timeout=timeout,
            body=body,
        )

    # ------------------------------------------------------------------ job preparation

    def auto_orient(
        self,
        scene_id: str,
        options: AutoOrientOptions | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        body = (options or AutoOrientOptions()).to_body()
        self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/auto-orient/",
            "autoOrient",
            _ignore,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def auto_support(
        self,
        scene_id: str,
        options: AutoSupportOptions | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        body = (options or AutoSupportOptions()).to_body()
        self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/auto-support/",
            "autoSupport",
            _ignore,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def auto_layout(
        self,
        scene_id: str,
        options: AutoLayoutOptions | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Scene:
        """Arrange models on the platform (SLA scenes); returns the laid-out scene."""
        body = (options or AutoLayoutOptions()).to_body()
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/auto-layout/",
            "autoLayout",
            _scene_or_empty,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def auto_pack(
        self,
        scene_id: str,
        options: AutoPackOptions | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Scene:
        """Arrange models in the build volume (SLS scenes); returns the packed scene."""
        body = (options or AutoPackOptions()).to_body()
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/auto-pack/",
            "autoPack",
            _scene_or_empty,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def pack_and_cage(
        self, options: PackAndCageOptions | None = None, *, timeout: float | None = None
    ) -> Scene:
        """Pack models and build a cage around them (SLS).

        The contract offers this only without a scene id: the server applies it to the most
        recently created scene, so create or load the scene right before calling it.
        """
        body = (options or PackAndCageOptions()).to_body()
        return self._call(
            "POST",
            "/scene/pack-and-cage/",
            "packAndCage",
            _scene_or_empty,
            timeout=timeout,
            body=body,
        )

    def hollow(
        self,
        scene_id: str,
        options: HollowOptions | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> ActionReport:
        body = (options or HollowOptions()).to_body()
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/hollow/",
            "hollowModel",
            ActionReport.from_json,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def label(
        self,
        scene_id: str,
        options: LabelOptions,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> ActionReport:
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/label/",
            "labelPart",
            ActionReport.from_json,
            body=options.to_body(),
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def add_drain_holes(
        self,
        scene_id: str,
        options: DrainHoleOptions,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> DrainHoleResult:
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/add-drain-holes/",
            "addDrainHoles",
            DrainHoleResult.from_json,
            body=options.to_body(),
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def get_print_validation(
        self,
        scene_id: str,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> PrintValidation:
        return self._long(
            "GET",
            f"/scene/{_seg(scene_id)}/print-validation/",
            "getPrintValidation",
            PrintValidation.from_json,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def estimate_print_time(
        self,
        scene_id: str,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> PrintTimeEstimate:
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/estimate-print-time/",
            "estimatePrintTime",
            PrintTimeEstimate.from_json,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def get_interferences(
        self,
        scene_id: str,
        *,
        collision_offset_mm: float | UnsetType = UNSET,
        timeout: float | None = None,
    ) -> Interferences:
        """Pairs of models closer than ``collision_offset_mm`` (server default if unset)."""
        body: dict[str, Any] = {}
        if not isinstance(collision_offset_mm, UnsetType):
            if collision_offset_mm < 0:
                raise ValueError(f"collision_offset_mm must be >= 0, got {collision_offset_mm}")
            body["collision_offset_mm"] = collision_offset_mm
        return self._call(
            "POST",
            f"/scene/{_seg(scene_id)}/interferences/",
            "getSceneInterferences",
            Interferences.from_json,
            timeout=timeout,
            body=body,
        )

    # ------------------------------------------------------------------ printing and devices

    def print_scene(
        self,
        scene_id: str,
        options: PrintOptions,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> PrintResult:
        """Upload the scene to a printer or Fleet Control queue (the contract's ``print``)."""
        return self._long(
            "POST",
            f"/scene/{_seg(scene_id)}/print/",
            "print",
            PrintResult.from_json,
            body=options.to_body(),
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    def get_devices(
        self, *, can_print: bool | None = None, timeout: float | None = None
    ) -> tuple[Device, ...]:
        """Devices discovered so far (``can_print=True``: only those that take prints)."""
        params = None if can_print is None else {"can_print": "true" if can_print else "false"}
        return self._call(
            "GET", "/devices/", "getDevices", Device.list_from_json, timeout=timeout, params=params
        )

    def get_device(self, device_id: str, *, timeout: float | None = None) -> Device:
        return self._call(
            "GET", f"/devices/{_seg(device_id)}/", "getDevice", Device.from_json, timeout=timeout
        )

    def discover_devices(
        self,
        *,
        timeout_seconds: int | UnsetType = UNSET,
        ip_address: str | UnsetType = UNSET,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[Device, ...]:
        """Look for devices on the network (or at ``ip_address``); returns the new ones."""
        body: dict[str, Any] = {}
        if timeout_seconds is not UNSET:
            if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int):
                raise ValueError(f"timeout_seconds must be an integer, got {timeout_seconds!r}")
            body["timeout_seconds"] = timeout_seconds
        if ip_address is not UNSET:
            body["ip_address"] = ip_address
        return self._long(
            "POST",
            "/discover-devices/",
            "discoverDevices",
            Device.list_from_json,
            body=body,
            timeout=timeout,
            deadline=self._deadline(deadline),
            progress=progress,
        )

    # ------------------------------------------------------------------ operations

    def list_operations(self, *, timeout: float | None = None) -> tuple[Operation, ...]:
        """Every operation started since the server was launched (without results)."""
        return self._call(
            "GET", "/operations/", "getAllOperations", Operation.list_from_json, timeout=timeout
        )

    def get_operation(self, operation_id: str, *, timeout: float | None = None) -> Operation:
        return self._call(
            "GET",
            f"/operations/{_seg(operation_id)}/",
            "getOperation",
            Operation.from_json,
            timeout=timeout,
        )

    def wait_for_operation(
        self,
        operation_id: str,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Operation:
        """Poll an operation until it SUCCEEDED (returned) or FAILED or timed out (raised).

        Its errors name the operation: what started it (``importModel``), when this client
        did, else ``operation <id>``, with the status read's endpoint beside it. The
        Retry-After waits of an operation this client started go on counting against the
        total its first polling began (a resumed wait does not begin a new hour)."""
        seconds = self._request_timeout(timeout)
        self._ensure_version(seconds)
        with self._started_lock:
            tally = self._started.get(operation_id)
        if tally is None:
            tally = WaitTally(f"operation {operation_id}")
        named = tally.of
        return wait_for_operation(
            partial(self._fetch_operation, waited_for=named, tally=tally),
            operation_id,
            deadline=self._deadline(deadline),
            clock=self._clock,
            sleep=self._sleep,
            request=self._info("GET", f"/operations/{_seg(operation_id)}/", "getOperation",
                               waited_for=named),
            request_timeout=seconds,
            policy=self._poll_policy,
            progress=progress,
            transient_codes=self._transient_codes,
        )


#: How many started operations a client remembers for :meth:`PreFormClient.wait_for_operation`.
_REMEMBERED = 256


# ---------------------------------------------------------------------- small parsers


def _operation_id(data: Any) -> str:
    obj = as_object(data, "async answer")
    value = obj.get("operationId")
    if not isinstance(value, str) or not value:
        raise MalformedResponse(f"operationId: expected the accepted operation's id, got {value!r}")
    return value


def _scene_with_id(data: Any) -> Scene:
    scene = Scene.from_json(data)
    if not scene.id:
        raise MalformedResponse("id: a new scene must have an id")
    return scene


def _scene_or_empty(data: Any) -> Scene:
    """Layout and pack answer with the scene; tolerate servers that answer with no body."""
    return Scene.from_json({} if data is None else data)


def _scene_model_ids(data: Any) -> tuple[str, ...]:
    """The ``id`` of each of a scene answer's models; the errors :meth:`Scene.from_json`
    gives for a scene, a model list or a model id that is not what the contract says."""
    models = as_object(data, "scene").get("models")
    if models is None:
        return ()
    if not isinstance(models, list):
        raise MalformedResponse(f"models: expected a list, got {models!r}")
    return tuple(req_str(as_object(model, "model"), "id") for model in models)


def _scene_list(data: Any) -> tuple[Scene, ...]:
    obj = as_object(data, "scene list")
    scenes = obj.get("scenes") or []
    if not isinstance(scenes, list):
        raise MalformedResponse(f"scenes: expected a list, got {scenes!r}")
    return tuple(Scene.from_json(item) for item in scenes)
