"""The states a test's build passes through on its way to a print's state, as a run moves it.

Tests of the superseded rule (store/superseded.py) make later jobs that are sent, printing or
printed; the store refuses a move its transitions do not allow, so each walks the same road.
"""

from __future__ import annotations

from preform_pipeline.store import JobState

__all__ = ["printing_steps"]

S = JobState
# The road to each state past PREPARED that a print reaches (PREPARED itself excluded).
_ROAD = {
    S.PRINT_SENDING: (),
    S.PRINT_SENT: (S.PRINT_SENDING,),
    S.VERIFYING: (S.PRINT_SENDING, S.PRINT_SENT),
    S.FINISHED: (S.PRINT_SENDING, S.PRINT_SENT, S.VERIFYING),
    S.PRINT_ERROR: (S.PRINT_SENDING, S.PRINT_SENT),
    S.ABORTED: (S.PRINT_SENDING, S.PRINT_SENT),
}


def printing_steps(state: JobState) -> tuple[JobState, ...]:
    """The states between PREPARED and ``state`` (none for a state a build reaches from
    PREPARED itself, such as DONE or FAILED)."""
    return _ROAD.get(state, ())
