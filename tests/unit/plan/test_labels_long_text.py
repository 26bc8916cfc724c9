"""A label far too long for its face fails with a short message quoting only its start."""

from __future__ import annotations

import pytest

from preform_pipeline.errors import LabelDoesNotFitError
from preform_pipeline.plan.labels import place_label


class TestLongLabel:
    """A 10,000-character label gives a reason of a few lines, not 10 KB."""

    def test_the_text_is_quoted_briefly(self) -> None:
        text = "W" * 10_000
        with pytest.raises(LabelDoesNotFitError) as caught:
            place_label((0, 0, 0), (10, 10, 10), {"face": "front", "fit": "fail"}, text)
        message = str(caught.value)
        assert len(message) < 400
        assert "(10000 characters)" in message
