"""A line indented wrongly is said in plain words whichever YAML parser read it: the recipe
loader's libyaml (the C loader) words its errors unlike PyYAML's pure-Python parser, which
settings files and sidecars are read with (session 44: a newcomer's over-indented recipe key
was told libyaml's raw "mapping values are not allowed in this context")."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from preform_pipeline.recipes.loader import parse_yaml
from preform_pipeline.yamlerrors import describe_yaml_error, safe_load

#: A key indented one space more than its neighbours (read as the value above going on).
OVER_INDENTED = "scene:\n  machine_type: FORM-4-0\n   layer_thickness_mm: 0.1\n"
#: A key indented less than its neighbours, inside a step's options.
UNDER_INDENTED = ("steps:\n  - label:\n      text: x\n     font_size_mm: 2\n")
#: A key among a list's items, neither an item nor under one.
IN_A_LIST = "steps:\n  - auto_orient\n  depth_mm: 1\n"


#: What a reader says of a document it cannot parse: line, column, message.
Said = tuple[int | None, int | None, str]


def _recipe_says(text: str) -> Said:
    root, problems = parse_yaml(text, "r.yaml")
    assert root is None
    (problem,) = problems
    return problem.line, problem.column, problem.message


def _settings_say(text: str) -> Said:
    with pytest.raises(yaml.YAMLError) as caught:
        safe_load(text)
    return describe_yaml_error(caught.value, text)


#: Each mistake, where it is said and the sentence it is said in.
MISTAKES = [
    pytest.param(OVER_INDENTED, 3, 22,
                 "a ':' where a value was expected (quote values that contain ': ', or fix "
                 "the indentation of this line)", id="indented-more"),
    pytest.param(UNDER_INDENTED, 4, 6,
                 "this line is not indented like the keys above it: the keys of one mapping "
                 "start in the same column (indent it as far as its neighbours, or as far as "
                 "the key it belongs under)", id="indented-less"),
    pytest.param(IN_A_LIST, 3, 3,
                 "a line in a list that is neither an item ('- ' at the column of the "
                 "others) nor indented under one", id="among-list-items"),
]


class TestAWronglyIndentedLineIsSaidPlainly:
    """Each parser's words for one mistake become the same sentence at the same place."""

    @pytest.mark.parametrize("read", [_recipe_says, _settings_say], ids=["libyaml", "pyyaml"])
    @pytest.mark.parametrize(("text", "line", "column", "sentence"), MISTAKES)
    def test_the_mistake_is_said_at_its_place(
        self, read: Callable[[str], Said], text: str, line: int, column: int, sentence: str
    ) -> None:
        assert read(text) == (line, column, f"YAML syntax error: {sentence}")


#: The same parser errors where no line is indented wrongly: text after a quoted value, in a
#: mapping and in a list, and a list item among a mapping's keys at their column.
NOT_INDENTATION = [
    pytest.param('scene:\n  machine_type: "FORM-4-0" x\n', id="after-a-quoted-value"),
    pytest.param('steps:\n  - "auto_orient" x\n', id="after-a-quoted-item"),
    pytest.param("scene: {}\n- auto_orient\n", id="an-item-among-keys"),
]


class TestOnlyAWronglyIndentedLineIsSaidToBe:
    """Review of session 44: the parser's words for "no key here" also cover mistakes on a
    line indented rightly; those keep the parser's words, not a false "not indented like"."""

    @pytest.mark.parametrize("read", [_recipe_says, _settings_say], ids=["libyaml", "pyyaml"])
    @pytest.mark.parametrize("text", NOT_INDENTATION)
    def test_the_parser_s_words_stay(self, read: Callable[[str], Said], text: str) -> None:
        _line, _column, said = read(text)
        assert "indented" not in said
        assert "while parsing a block" in said

    @pytest.mark.parametrize(("read", "words"), [
        (_recipe_says, "while parsing a block mapping did not find expected key"),
        (_settings_say, "while parsing a block mapping expected <block end>, but found '-'"),
    ], ids=["libyaml", "pyyaml"])
    def test_the_parser_s_words_are_said_whole(
        self, read: Callable[[str], Said], words: str
    ) -> None:
        # s44-mutants: its context and problem, one sentence, as the parser wrote them.
        assert read("scene: {}\n- auto_orient\n") == (2, 1, f"YAML syntax error: {words}")
