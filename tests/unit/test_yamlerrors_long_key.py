"""A key over PyYAML's 1,024 characters for a simple key is said as such by either parser
(session 44's fuzzing: on a document's first line its words, "mapping values are not allowed",
became the advice to quote values holding ': ', untrue of a key; further down it was
"while scanning a simple key could not find expected ':'")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from preform_pipeline.yamlerrors import safe_load
from tests.unit.test_yamlerrors_indentation import Said, _recipe_says, _settings_say

KEY = "k" * 1100


LONG = ("YAML syntax error: a key of 1,100 characters; YAML reads a key of at most 1,024 "
        "characters before its ':' (no key of a recipe or settings file is that long: shorten "
        "it, or look for a value written where a key should be)")
READERS = pytest.mark.parametrize("read", [_recipe_says, _settings_say],
                                  ids=["libyaml", "pyyaml"])


class TestALongKey:
    @READERS
    @pytest.mark.parametrize(("text", "line", "column"), [
        (f"{KEY}: 1\n", 1, 1),
        (f"scene: 1\n{KEY}: 1\n", 2, 1),
        (f"scene:\n  {KEY}: 1\n", 2, 3),
        (f"steps:\n  - {KEY}: 1\n", 2, 5),
        (f"scene: {{a: 1, {KEY}: 1}}\n", 1, 15),
    ], ids=["first-line", "second-line", "nested", "list-item", "flow"])
    def test_it_is_said_as_a_key_too_long(
        self, read: Callable[[str], Said], text: str, line: int, column: int
    ) -> None:
        assert read(text) == (line, column, LONG)

    @READERS
    def test_a_long_value_before_a_second_colon_keeps_the_quoting_advice(
        self, read: Callable[[str], Said]
    ) -> None:
        line, _, message = read(f"a: {KEY}: c\n")
        assert line == 1
        assert "quote values that contain ': '" in message

    def test_a_key_of_1024_characters_is_read(self) -> None:
        assert safe_load(f"{'k' * 1024}: 1\n") == {"k" * 1024: 1}
