"""Failures map onto one error tree: transient server faults versus permanent input faults."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from preform_pipeline.api import (
    EulerAngles,
    LabelOptions,
    Operation,
    OperationStatus,
    Position,
    PreFormClient,
    SceneSettings,
    code_hint,
)
from preform_pipeline.api._http import error_for_status
from preform_pipeline.api.operations import operation_failed_error
from preform_pipeline.errors import (
    ApiError,
    PermanentApiError,
    RequestInfo,
    RequestRejectedError,
    ServerInternalError,
    ServerTimeoutError,
    ServerUnreachableError,
    TransientApiError,
)
from preform_pipeline.urlauth import CREDENTIALS_REFUSED
from tests.unit.api.api_fakes import BASE_URL, ScriptedServer, error, ok

SCENE = "/scene/scene-1/"


def raising(exc_type: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


class TestNoAnswer:
    """A request that got no answer is a transient fault that names the request."""

    @pytest.mark.parametrize(
        ("failure", "expected"),
        [
            (httpx.ConnectError, ServerUnreachableError),
            (httpx.ReadError, ServerUnreachableError),
            (httpx.RemoteProtocolError, ServerUnreachableError),
            (httpx.WriteError, ServerUnreachableError),
            (httpx.ConnectTimeout, ServerTimeoutError),
            (httpx.ReadTimeout, ServerTimeoutError),
            (httpx.PoolTimeout, ServerTimeoutError),
        ],
    )
    def test_transport_failures_map_to_transient_errors(
        self,
        failure: type[httpx.TransportError],
        expected: type[ApiError],
        server: ScriptedServer,
        client: PreFormClient,
    ) -> None:
        server.on("GET", SCENE, raising(failure))

        with pytest.raises(expected) as caught:
            client.get_scene("scene-1")

        err = caught.value
        assert isinstance(err, TransientApiError)
        assert err.request == RequestInfo("GET", BASE_URL + SCENE, "getScene")
        assert err.status_code is None
        assert err.hint
        assert isinstance(err.__cause__, failure)

    def test_a_refused_connection_says_to_check_the_server(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

        client = PreFormClient(BASE_URL, transport=httpx.MockTransport(refuse))

        with pytest.raises(ServerUnreachableError) as caught:
            client.get_api_version()

        assert "Connection refused" in str(caught.value)
        assert "PreFormServer is running" in str(caught.value)


class TestErrorAnswers:
    """An answered error keeps the server's code, message, HTTP status and the request."""

    def test_a_400_error_model_is_a_rejected_request(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("PUT", SCENE, error(400, "INVALID_MATERIAL", "FLXXXX01 is not a material"))

        with pytest.raises(RequestRejectedError) as caught:
            client.update_scene("scene-1", _settings())

        err = caught.value
        assert isinstance(err, PermanentApiError)
        assert err.code == "INVALID_MATERIAL"
        assert err.server_message == "FLXXXX01 is not a material"
        assert err.status_code == 400
        assert err.request == RequestInfo("PUT", BASE_URL + SCENE, "updateScene")
        assert err.body == {
            "error": {"code": "INVALID_MATERIAL", "message": "FLXXXX01 is not a material"}
        }
        assert "400 INVALID_MATERIAL: FLXXXX01 is not a material" in str(err)

    def test_a_404_for_an_unknown_scene_is_a_scene_the_server_lost(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        # The client only names scenes the server made: one it no longer has was lost in a
        # restart, and the build is retried (session 39; it used to fail for good).
        server.on("GET", SCENE, error(404, "SCENE_NOT_FOUND", "no scene scene-1"))

        with pytest.raises(ServerInternalError) as caught:
            client.get_scene("scene-1")

        assert (caught.value.status_code, caught.value.code) == (404, "SCENE_NOT_FOUND")
        assert "no longer has scene scene-1" in caught.value.message

    def test_a_500_error_model_is_an_internal_server_error(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", SCENE, error(500, "INTERNAL", "geometry kernel crashed"))

        with pytest.raises(ServerInternalError) as caught:
            client.get_scene("scene-1")

        err = caught.value
        assert isinstance(err, TransientApiError)
        assert (err.code, err.server_message, err.status_code) == (
            "INTERNAL",
            "geometry kernel crashed",
            500,
        )

    def test_a_5xx_with_a_non_json_body_keeps_an_excerpt_of_it(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", SCENE, httpx.Response(502, text="<html>Bad Gateway</html>"))

        with pytest.raises(ServerInternalError) as caught:
            client.get_scene("scene-1")

        assert caught.value.server_message == "<html>Bad Gateway</html>"
        assert caught.value.code is None

    def test_a_408_is_a_server_timeout(self, server: ScriptedServer, client: PreFormClient) -> None:
        server.on("GET", SCENE, httpx.Response(408))

        with pytest.raises(ServerTimeoutError):
            client.get_scene("scene-1")

    def test_a_label_error_without_a_code_keeps_the_message(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on(
            "POST",
            "/scene/scene-1/label/",
            httpx.Response(400, json={"error": {"message": "Model not found"}}),
        )

        with pytest.raises(RequestRejectedError) as caught:
            client.label(
                "scene-1", LabelOptions("m-9", "X", Position(0, 0, 0), EulerAngles(0, 0, 0), 5, 1)
            )

        assert caught.value.code is None
        assert caught.value.server_message == "Model not found"

    def test_a_hollow_rejection_lists_the_models_that_failed(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        server.on("POST", "/scene/scene-1/hollow/", httpx.Response(400, json={"failures": ["m-2"]}))
        client = make_client(async_operations=False)

        with pytest.raises(RequestRejectedError, match="failed for models: m-2"):
            client.hollow("scene-1")


class TestUnreadableAnswers:
    """A success answer that breaks the contract is a transient server fault, not a crash."""

    def test_a_200_that_is_not_json(self, server: ScriptedServer, client: PreFormClient) -> None:
        server.on("GET", SCENE, httpx.Response(200, text="READY FOR INPUT"))

        with pytest.raises(ServerInternalError, match="not JSON"):
            client.get_scene("scene-1")

    def test_a_200_with_the_wrong_shape(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", SCENE, ok({"id": "scene-1", "models": {"m-1": {}}}))

        with pytest.raises(ServerInternalError, match="unreadable answer: models") as caught:
            client.get_scene("scene-1")

        assert caught.value.request is not None
        assert caught.value.request.operation == "getScene"

    def test_a_model_without_an_id(self, server: ScriptedServer, client: PreFormClient) -> None:
        server.on("GET", "/scene/scene-1/models/m-1/", ok({"name": "nameless"}))

        with pytest.raises(ServerInternalError, match="id"):
            client.get_model("scene-1", "m-1")

    def test_an_unknown_operation_status(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", "/operations/op-1/", ok({"id": "op-1", "status": "PAUSED"}))

        with pytest.raises(ServerInternalError, match="PAUSED"):
            client.get_operation("op-1")

    def test_a_new_scene_without_an_id(self, server: ScriptedServer, client: PreFormClient) -> None:
        server.on("POST", "/scene/", ok({"models": []}))

        with pytest.raises(ServerInternalError, match="must have an id"):
            client.create_scene(_settings())


class TestTimeoutArgument:
    """Per-call timeouts are positive seconds; the client default applies when omitted."""

    def test_the_default_timeout_is_sent_with_each_request(
        self, server: ScriptedServer, make_client: Callable[..., PreFormClient]
    ) -> None:
        seen: list[float] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request.extensions["timeout"]["read"])
            return ok({"id": "scene-1"})

        server.on("GET", SCENE, record)
        client = make_client(timeout=42.0)

        client.get_scene("scene-1")
        client.get_scene("scene-1", timeout=7)

        assert seen == [42.0, 7]

    def test_a_non_positive_timeout_is_refused(self, client: PreFormClient) -> None:
        with pytest.raises(ValueError, match="positive"):
            client.get_scene("scene-1", timeout=0)


def _settings() -> SceneSettings:
    return SceneSettings("FORM-4-0", "FLGPBK05", 0.05)


class TestACodeWhoseFixIsTheUsers:
    """``NOT_LOGGED_IN``, answered at once or as a failed operation, carries what a user
    does about it (the server's message speaks of its API: "POST /login/ first")."""

    HINT = ("the server is not logged in to the Dashboard: set dashboard_login in the "
            "settings (docs/dispatch.md)")

    def test_a_refused_request_says_to_set_the_login(self) -> None:
        body = {"error": {"code": "NOT_LOGGED_IN", "message": "no user is logged in"}}
        err = error_for_status(404, body, RequestInfo("POST", BASE_URL + "/login/", None))
        assert isinstance(err, RequestRejectedError)
        assert err.hint == self.HINT

    def test_a_failed_operation_says_to_set_the_login(self) -> None:
        failed = Operation("op-1", OperationStatus.FAILED, result={"error": {
            "code": "NOT_LOGGED_IN", "message": "needs a Dashboard login; POST /login/ first"}})
        err = operation_failed_error(failed, RequestInfo("POST", BASE_URL + SCENE, "print"))
        assert err.hint == self.HINT
        assert str(err).endswith(f"POST /login/ first ({self.HINT})")

    def test_other_codes_keep_the_general_hints(self) -> None:
        failed = Operation("op-1", OperationStatus.FAILED, result={"error": {
            "code": "INVALID_INPUT", "message": "bad"}})
        err = operation_failed_error(failed, RequestInfo("POST", BASE_URL + SCENE, "print"))
        assert err.hint == ("the server could not do this with this input; check the "
                            "step's options and files")
        assert code_hint(None, "as is") == "as is"


class TestAPasswordInTheServersUrl:
    """Review (rv45-loose): an error named its request by the url whole, and its message is
    a build's reason (summary, report, job store); the password is hidden there, as in the
    log, and the request is sent with it (session 45: as basic auth, the url's userinfo in
    the ``Authorization`` header, not left in a url the wire transport never read)."""

    @pytest.mark.parametrize("user", ["olivia", ""], ids=["user", "no-user"])
    def test_an_error_names_the_url_without_it(self, user: str) -> None:
        sent: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return error(500, "BOOM", "it failed")

        client = PreFormClient(f"http://{user}:hunter2@127.0.0.1:44388",
                               transport=httpx.MockTransport(answer),
                               check_version_on_first_use=False)
        with pytest.raises(ServerInternalError) as caught:
            client.create_scene(SceneSettings("FORM-4-0", "FLGPGR05", 0.1))

        shown = f"http://{user}:[redacted]@127.0.0.1:44388"
        assert str(caught.value).startswith(f"POST {shown}/scene/ (createScene): ")
        assert caught.value.request is not None and "hunter2" not in caught.value.request.url
        assert (client.base_url, repr(client)) == (shown, f"PreFormClient({shown!r})")
        basic = "Basic " + base64.b64encode(f"{user}:hunter2".encode()).decode()
        assert [(str(r.url), r.headers.get("Authorization")) for r in sent] == [
            ("http://127.0.0.1:44388/scene/", basic)]

    def test_a_token_given_as_the_user_alone_is_hidden_too(self) -> None:
        # Sent as basic auth with an empty password: a proxy's token, not a name (session 46).
        sent: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return error(500, "BOOM", "it failed")

        client = PreFormClient("http://hunter2@[::1]:44388",
                               transport=httpx.MockTransport(answer),
                               check_version_on_first_use=False)
        with pytest.raises(ServerInternalError) as caught:
            client.create_scene(SceneSettings("FORM-4-0", "FLGPGR05", 0.1))

        shown = "http://[redacted]@[::1]:44388"
        assert str(caught.value).startswith(f"POST {shown}/scene/ (createScene): ")
        assert (client.base_url, repr(client)) == (shown, f"PreFormClient({shown!r})")
        basic = "Basic " + base64.b64encode(b"hunter2:").decode()
        assert [r.headers.get("Authorization") for r in sent] == [basic]

    def test_a_401_says_the_url_wants_a_user_and_password(self) -> None:
        client = PreFormClient(
            "http://olivia:wrong@127.0.0.1:44388", check_version_on_first_use=False,
            transport=httpx.MockTransport(lambda request: httpx.Response(401, text="no")))
        with pytest.raises(RequestRejectedError) as caught:
            client.create_scene(SceneSettings("FORM-4-0", "FLGPGR05", 0.1))

        assert caught.value.hint == CREDENTIALS_REFUSED
        assert "wrong" not in str(caught.value)
