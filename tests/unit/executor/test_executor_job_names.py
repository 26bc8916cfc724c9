"""Default job names carry the build's case ids, shortened to whole ids before the key."""

from __future__ import annotations

from preform_pipeline.executor.runner import JOB_NAME_ROOM, _fit_cases
from preform_pipeline.store import embed_key, new_key


class TestCaseIdsInJobNames:
    """Case ids are kept whole; what does not fit is counted, and the key always fits."""

    def test_a_few_cases_are_all_named(self) -> None:
        assert _fit_cases(["C-1", "C-2"], JOB_NAME_ROOM) == "C-1+C-2"

    def test_many_cases_keep_whole_ids_and_count_the_rest(self) -> None:
        cases = [f"C-{n:03d}" for n in range(27)]
        name = _fit_cases(cases, JOB_NAME_ROOM)
        assert len(name) <= JOB_NAME_ROOM
        shown, more = name.rsplit("+", 1)
        assert more == f"{27 - len(shown.split('+'))} more"
        assert shown.split("+") == cases[: len(shown.split("+"))]
        key = new_key(7)
        assert embed_key(name, key) == f"{name} {key}"  # nothing cut: the name fits whole
