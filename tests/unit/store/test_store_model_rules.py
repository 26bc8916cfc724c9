"""The job model's own rules: state names as users type them, state groups, frozen values."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from preform_pipeline.store import Job, JobState
from preform_pipeline.store.model import (
    ALLOWED_TRANSITIONS,
    INTERRUPTED_STATES,
    RETRYABLE_STATES,
    TERMINAL_STATES,
    parse_state,
)

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)


def _job(**fields: Any) -> Job:
    return Job(1, "PP-7MKAM6Q0A3", "r", Path("a.stl"), "a.stl", JobState.QUEUED, NOW, NOW,
               **fields)


class TestParseState:
    """``--state`` takes a state's value or name in any case, with - or _."""

    @pytest.mark.parametrize("text", ["print_sent", "print-sent", "PRINT_SENT", " Print-Sent "])
    def test_any_spelling_of_a_state_is_read(self, text: str) -> None:
        assert parse_state(text) is JobState.PRINT_SENT

    def test_a_state_is_taken_as_it_is(self) -> None:
        assert parse_state(JobState.DONE) is JobState.DONE

    def test_an_unknown_state_lists_every_known_one(self) -> None:
        with pytest.raises(ValueError) as caught:
            parse_state("printed")
        known = ", ".join(s.value for s in JobState)
        assert str(caught.value) == f"unknown state 'printed'; known states: {known}"
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


class TestStateGroups:
    """Each state says whether it is terminal, interrupted or retryable, as the tables say."""

    @pytest.mark.parametrize("state", list(JobState))
    def test_the_properties_follow_the_groups(self, state: JobState) -> None:
        assert state.terminal is (state in TERMINAL_STATES)
        assert state.interrupted is (state in INTERRUPTED_STATES)
        assert state.retryable is (state in RETRYABLE_STATES)
        assert str(state) == state.value

    @pytest.mark.parametrize("state", list(JobState))
    def test_can_become_is_the_table(self, state: JobState) -> None:
        assert {o for o in JobState if state.can_become(o)} == set(ALLOWED_TRANSITIONS[state])

    def test_a_few_well_known_answers(self) -> None:
        assert JobState.FAILED.terminal and not JobState.PRINT_SENT.terminal
        assert JobState.PRINT_SENDING.interrupted and not JobState.PREPARED.interrupted
        assert JobState.UNVERIFIED.retryable and not JobState.FINISHED.retryable
        assert JobState.PREPARED.can_become(JobState.PRINT_SENDING)
        assert not JobState.FINISHED.can_become(JobState.QUEUED)


class TestFrozenJobs:
    """A job's sidecar values cannot be changed behind the store's back."""

    def test_fields_given_as_a_dict_are_copied_and_read_only(self) -> None:
        given = {"patient": "C-1"}
        job = _job(fields=given)
        given["patient"] = "changed"
        assert job.fields == {"patient": "C-1"}
        with pytest.raises(TypeError):
            job.fields["patient"] = "x"  # type: ignore[index]

    def test_read_only_fields_are_kept_as_they_are(self) -> None:
        fields = MappingProxyType({"a": 1})
        assert _job(fields=fields).fields is fields

    def test_no_fields_is_an_empty_mapping(self) -> None:
        assert _job().fields == {}
        assert _job(fields=None).fields == {}
