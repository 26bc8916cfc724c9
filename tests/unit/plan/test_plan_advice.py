"""What is said of a file in a format that is not printed: one rule, ``run``'s and the hot
folder's (session 42: the intake told to convert a ``.zip`` or a ``.form``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from preform_pipeline.plan.advice import IMPORTED, by_name

NOT_A_MODEL_TODO = ("it is not a model to print: keep it out of folders of models (only model "
                    "files and their sidecars belong there)")


class TestWhatHelpsEachFormat:
    """Each kind of file gets the advice that is true of it, the suffix as the file spells it."""

    @pytest.mark.parametrize(("name", "what", "todo"), [
        ("scan.zip", "an archive, not a model file",
         "unpack it, and give the model files it holds instead"),
        ("C-7.form", "a PreForm job, not a model file",
         "open it in PreForm, or give the model files it was made from instead"),
        ("bracket.stp", "a CAD file, not a mesh",
         "export the part from the CAD software as STL, OBJ or 3MF, and give that file instead"),
        ("bracket.STEP", "a CAD file, not a mesh",
         "export the part from the CAD software as STL, OBJ or 3MF, and give that file instead"),
        ("shape.amf", "a mesh format PreFormServer does not import",
         "convert it to STL, OBJ or 3MF, and give that file instead"),
        ("scan.ply", "a mesh format PreFormServer does not import",
         "convert it to STL, OBJ or 3MF, and give that file instead"),
        ("photo.png", "not a model file", NOT_A_MODEL_TODO),
        ("photo.jpg", "not a model file", NOT_A_MODEL_TODO),
        ("rx.pdf", "not a model file", NOT_A_MODEL_TODO),
        ("notes.txt", "not a model file", NOT_A_MODEL_TODO),
        ("data.xyz", "not a model file", NOT_A_MODEL_TODO),
    ])
    def test_the_advice_names_what_the_file_is_and_what_helps(
        self, name: str, what: str, todo: str
    ) -> None:
        advice = by_name(Path("inbox") / name)
        assert advice.why == f"{Path(name).suffix} is {what} ({IMPORTED})"
        assert advice.todo == todo
        assert advice.said == f"{advice.why}; {todo}"

    def test_a_file_without_extension_is_named_as_such(self) -> None:
        assert by_name(Path("README")).why == (
            f"a file without extension is not a model file ({IMPORTED})")
