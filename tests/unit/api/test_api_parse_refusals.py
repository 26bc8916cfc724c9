"""What the answer readers (api/_parse.py) take and what their refusals quote.

A refusal becomes a build's reason (``unreadable answer: ...``): it names the field and quotes
the value the server sent, or only its type under a key that names a secret. A progress is a
fraction from 0.0 to 1.0, both ends included; any other number is no progress known.
"""

from __future__ import annotations

from typing import Any

import pytest

from preform_pipeline.api._parse import (
    MalformedResponse,
    opt_bool,
    opt_fraction,
    opt_int,
    opt_number,
    opt_str,
)
from preform_pipeline.api.models import Operation


def _refusal(read: Any, value: object, key: str = "field") -> str:
    with pytest.raises(MalformedResponse) as caught:
        read({key: value}, key)
    return str(caught.value)


class TestAProgress:
    """An operation's progress as the client reads it."""

    @pytest.mark.parametrize(("sent", "read"), [
        (0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (1, 1.0), (0, 0.0),
        (1.5, None), (-0.25, None), (float("nan"), None), (float("inf"), None), (None, None),
    ])
    def test_is_a_fraction_from_nought_to_one_or_unknown(
        self, sent: object, read: float | None
    ) -> None:
        operation = Operation.from_json({"id": "op1", "status": "IN_PROGRESS", "progress": sent})
        assert operation.progress == read

    def test_that_is_no_number_is_refused_quoting_it(self) -> None:
        assert _refusal(opt_fraction, "half", "progress") == \
            "progress: expected a number, got 'half'"


class TestARefusalQuotesTheValue:
    """Each reader says the field, what it expected, and what came."""

    @pytest.mark.parametrize(("read", "sent", "said"), [
        (opt_str, 7, "field: expected a string, got 7"),
        (opt_number, "7 s", "field: expected a number, got '7 s'"),
        (opt_number, float("inf"), "field: expected a finite number, got inf"),
        (opt_int, "7", "field: expected an integer, got '7'"),
        (opt_int, 7.5, "field: expected an integer, got 7.5"),
        (opt_int, True, "field: expected an integer, got True"),
        (opt_bool, "yes", "field: expected true or false, got 'yes'"),
    ], ids=["str", "number", "infinity", "int-text", "int-fraction", "int-bool", "bool"])
    def test_of_each_reader(self, read: Any, sent: object, said: str) -> None:
        assert _refusal(read, sent) == said

    @pytest.mark.parametrize(("read", "sent", "kind"), [
        (opt_str, ["tok-s48-9c1d"], "list"),
        (opt_int, "tok-s48-9c1d", "str"),
        (opt_bool, {"v": "tok-s48-9c1d"}, "dict"),
    ])
    def test_under_a_secret_s_key_by_its_type_alone(
        self, read: Any, sent: object, kind: str
    ) -> None:
        said = _refusal(read, sent, "refresh_token")
        assert said.endswith(f"got a {kind} (not shown: refresh_token is a secret)")
        assert "9c1d" not in said


class TestWhatIsTaken:
    """Values of the right type are read as they are; a missing one is None."""

    def test_whole_numbers_as_integers(self) -> None:
        assert [opt_int({"n": v}, "n") for v in (3, 3.0, None)] == [3, 3, None]
        assert opt_int({}, "n") is None

    def test_true_and_false(self) -> None:
        assert [opt_bool({"b": v}, "b") for v in (True, False, None)] == [True, False, None]
        assert opt_bool({}, "b") is None
