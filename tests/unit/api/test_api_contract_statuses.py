"""Answers that are valid HTTP and JSON but not a success the Local API contract lists.

Every success of the contract is a 200, or a 202 for an operation the server runs on
(``?async=true``). Session 47's fuzzer (``bench/fuzz_inputs.py``, kind ``localapi``) found a
204, a 200 whose body is an ErrorModel and a 202 to a call that waits for its result each
taken as done: an orientation, an interference check or a scene read the server never gave passed,
and the run succeeded. Each is now a ServerInternalError (the build is tried again) that says
what came back. The client talks real HTTP to :mod:`tests.hostile_http`'s front.
"""

from __future__ import annotations

import pytest

from preform_pipeline.api import PreFormClient, PrintOptions
from preform_pipeline.errors import ServerInternalError, TransientApiError
from tests.hostile_http import HostileFront, reply

SCENE = "/scene/abc/"
ERROR_BODY = b'{"error": {"code": "SCENE_BUSY", "message": "another operation runs"}}'



class TestSuccessesPreFormServerNeverSends:
    """A 2xx other than 200 and 202 is no success of PreFormServer's: nothing was done."""

    @pytest.mark.parametrize("status", [201, 203, 204, 206])
    def test_another_2xx_to_a_step_is_a_server_error_naming_the_status(
        self, front: HostileFront, status: int
    ) -> None:
        front.on("POST", SCENE + "auto-orient/", reply(status, b"" if status == 204 else b"{}"))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.auto_orient("abc")
        assert f"server answered {status}, which is not how PreFormServer answers a success" \
            in caught.value.message
        assert "(autoOrient)" in caught.value.message
        assert isinstance(caught.value, TransientApiError)

    def test_an_error_body_under_a_200_is_the_error_it_holds(self, front: HostileFront) -> None:
        front.on("GET", SCENE, reply(200, ERROR_BODY))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.get_scene("abc")
        assert ("server answered 200 with an error (SCENE_BUSY: another operation runs)"
                in caught.value.message)
        assert caught.value.code == "SCENE_BUSY"

    def test_an_empty_error_under_a_200_says_so_and_what_may_be_answering(
        self, front: HostileFront
    ) -> None:
        front.on("GET", SCENE, reply(200, b'{"error": {}}'))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.get_scene("abc")
        assert "server answered 200 with an error (no code or message), which is not how " \
            "PreFormServer answers a success" in caught.value.message
        assert caught.value.status_code == 200
        assert "something other than PreFormServer may be answering" in caught.value.hint

    def test_a_200_whose_error_is_no_object_is_read_as_ever(self, front: HostileFront) -> None:
        # Only an ErrorModel's ``error`` object says failure; any other field is the parser's.
        front.on("POST", SCENE + "auto-orient/", reply(200, b'{"error": null, "warnings": []}'))
        with PreFormClient(front.url, timeout=5) as client:
            client.auto_orient("abc")


class TestA202ToACallThatWaits:
    """A 202 to a call that asked for no operation is not its result."""

    def test_an_operation_id_is_not_read_as_the_interferences(self, front: HostileFront) -> None:
        front.on("POST", SCENE + "interferences/",
                 reply(202, b'{"operationId": "0b7c4f8e-6d0e-4d5a-9c53-1d1f2f0e7a11"}'))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.get_interferences("abc")
        assert ("server answered 202 (an operation it runs on) to getSceneInterferences, which "
                "waits for its result" in caught.value.message)
        assert caught.value.status_code == 202
        # s48: what a log line and the build's reason say of it: the call, the answer, and
        # that another server is tried.
        assert caught.value.request is not None
        assert caught.value.request.operation == "getSceneInterferences"
        assert caught.value.body == {"operationId": "0b7c4f8e-6d0e-4d5a-9c53-1d1f2f0e7a11"}
        assert caught.value.hint == ("the server's answer breaks the Local API contract; "
                                     "retry on another server")


class TestAPrintAnsweredWithNothing:
    """An empty 200 to a print is no print sent: unreadable, not a result without a job id."""

    def test_an_empty_print_answer_is_a_server_error(self, front: HostileFront) -> None:
        front.on("POST", SCENE + "print/", reply(200, b""))
        with PreFormClient(front.url, timeout=5) as client, \
                pytest.raises(ServerInternalError) as caught:
            client.print_scene("abc", PrintOptions(printer="Form4-A", job_name="PP-1 crown"))
        assert "(print): unreadable answer: print result: expected a JSON object, got " \
            "NoneType" in caught.value.message
