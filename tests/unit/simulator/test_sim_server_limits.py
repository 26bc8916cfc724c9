"""Hostile request bodies: deep nesting and oversize bodies are 400 with an ErrorModel body."""

from __future__ import annotations

import httpx
from test_sim_server_errors import assert_error_model, raw_exchange

from preform_pipeline.simulator.http import DEFAULT_MAX_JSON_DEPTH, json_deeper_than, json_depth
from preform_pipeline.simulator.server import DEFAULT_MAX_BODY_BYTES, SimulatorServer


class TestJsonDepth:
    """The bracket count sees nesting outside strings only."""

    def test_counts_nesting(self) -> None:
        assert json_depth(b'{"a": [[1], {"b": []}]}') == 4

    def test_brackets_inside_strings_do_not_count(self) -> None:
        assert json_depth(b'{"a": "[[[[{{{{", "b": "\\"[["}') == 1

    def test_empty_body_has_no_depth(self) -> None:
        assert json_depth(b"") == 0


class TestJsonDeeperThan:
    """The limit's check: a body with few brackets is let through uncounted (no numpy), one
    with many is counted."""

    def test_a_body_at_the_limit_of_brackets_is_not_deeper(self) -> None:
        assert not json_deeper_than(b"[" * 3 + b"]" * 3, 3)

    def test_one_bracket_more_than_the_limit_is_deeper(self) -> None:
        assert json_deeper_than(b"[" * 4 + b"]" * 4, 3)

    def test_many_brackets_in_strings_are_counted_and_not_deeper(self) -> None:
        assert not json_deeper_than(b'{"a": "[[[[{{{{"}', 3)

    def test_objects_count_as_arrays_do(self) -> None:
        assert json_deeper_than(b'{"a": ' * 4 + b"1" + b"}" * 4, 3)

    def test_nesting_at_the_limit_among_more_brackets_is_not_deeper(self) -> None:
        assert not json_deeper_than(b"[[[1], [2]], [[3]]]", 3)


class TestHostileBodies:
    """The server answers hostile bodies with 400 and keeps serving."""

    def test_deeply_nested_json_is_400_not_500(self, sim_client: httpx.Client) -> None:
        body = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        response = sim_client.post("/scene/", content=body)
        answer = assert_error_model(response, 400, "INVALID_JSON")
        assert f"deeper than {DEFAULT_MAX_JSON_DEPTH}" in answer["error"]["message"]
        assert sim_client.get("/").status_code == 200

    def test_nesting_just_inside_the_limit_is_decoded(self, sim_client: httpx.Client) -> None:
        inner = b"[" * (DEFAULT_MAX_JSON_DEPTH - 1) + b"]" * (DEFAULT_MAX_JSON_DEPTH - 1)
        response = sim_client.post("/scene/", content=b'{"machine_type": ' + inner + b"}")
        # Decoded and handed on: whatever the engine says, it is not a JSON complaint.
        assert response.status_code != 500
        if response.status_code == 400:
            assert response.json()["error"]["code"] != "INVALID_JSON"

    def test_a_body_over_the_size_limit_is_400(self, sim_server: SimulatorServer) -> None:
        status, body = raw_exchange(
            sim_server,
            b"POST /scene/ HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + str(DEFAULT_MAX_BODY_BYTES + 1).encode() + b"\r\n\r\n{}",
        )
        assert status == 400
        assert body["error"]["message"]
