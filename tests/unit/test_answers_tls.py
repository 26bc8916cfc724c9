"""What a request that met the wrong side of TLS is told (``answers.tls_mismatch``): an
https:// request to a plain server fails either on the plain answer (an ``[SSL: ...]`` record
error) or on the server hanging up mid-handshake (EOF), as timing decides; both must say to
check for http://."""

from __future__ import annotations

import pytest

from preform_pipeline.answers import tls_mismatch


class TestAnHttpsRequestToAPlainServer:
    @pytest.mark.parametrize("error", [
        "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)",
        "[SSL: RECORD_LAYER_FAILURE] record layer failure (_ssl.c:1006)",
    ])
    def test_a_plain_answer_is_said_not_to_speak_tls(self, error: str) -> None:
        assert tls_mismatch(OSError(error)) == (
            "the server does not speak TLS at this address: check whether it needs http://")

    @pytest.mark.parametrize("error", [
        "TLS/SSL connection has been closed (EOF) (_ssl.c:992)",
        "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)",
    ])
    def test_a_hang_up_in_the_handshake_asks_for_http_too(self, error: str) -> None:
        hint = tls_mismatch(OSError(error))
        assert hint is not None
        assert hint.startswith("the server hung up during the TLS handshake")
        assert hint.endswith("check whether it needs http://")

    def test_another_failure_is_no_tls_mismatch(self) -> None:
        assert tls_mismatch(OSError("[Errno 111] Connection refused")) is None
