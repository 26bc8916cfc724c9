"""The columns a placement takes first: a few spread over the model, then every other one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from preform_pipeline.plan import nesting
from preform_pipeline.plan.nesting import Outline, _Nester, _Unit
from tests.unit.plan.test_plan_nesting import rectangle


def occupied_mask(width: int, first: int, last: int, turns: int = 3) -> np.ndarray:
    mask = np.zeros((turns, width), dtype=bool)
    mask[:, first : last + 1] = True
    return mask


class TestProbeColumns:
    """Column 0, every eighth occupied column and the last go first; the rest follow once."""

    def test_a_model_in_columns_3_to_19_is_probed_at_0_3_11_and_19(self) -> None:
        probe, rest = nesting._probe_columns(occupied_mask(30, 3, 19))
        assert probe == (0, 3, 11, 19)
        assert rest == tuple(c for c in range(3, 20) if c not in (3, 11, 19))

    def test_a_model_filling_every_column_is_probed_at_its_first_and_last(self) -> None:
        probe, rest = nesting._probe_columns(occupied_mask(21, 0, 20))
        assert probe == (0, 8, 16, 20)
        assert set(rest) == set(range(21)) - {0, 8, 16, 20}

    def test_empty_columns_are_never_taken_after_the_first(self) -> None:
        probe, rest = nesting._probe_columns(np.zeros((2, 6), dtype=bool))
        assert (probe, rest) == ((0,), ())

    @settings(max_examples=60, deadline=None)
    @given(arrays(np.bool_, st.tuples(st.integers(1, 4), st.integers(1, 70))))
    def test_every_occupied_column_is_taken_exactly_once(self, finite: np.ndarray) -> None:
        probe, rest = nesting._probe_columns(finite)
        occupied = set(np.flatnonzero(finite.any(axis=0)).tolist())
        assert probe[0] == 0
        assert list(probe) == sorted(set(probe))
        assert not set(probe) & set(rest)
        assert set(rest) <= occupied
        assert (set(probe) | set(rest)) - {0} == occupied - {0}

    def test_the_profiles_of_an_outline_carry_its_probe(self) -> None:
        outline = Outline("bar", rectangle(30.0, 6.0), 1.0, 180.0)
        nester = _Nester([outline], (100.0, 80.0), 0.0, False, 1.0, 15.0, None, 0.0)
        turns = nester.turns["bar"]
        # 31 columns for 30 mm (both ends' points), and the 1 mm growth reaches one more
        # column on each side: 33 occupied columns.
        assert turns.probe == (0, 8, 16, 24, 32)
        assert turns.count.tolist() == [33]
        assert turns.lo_sum.tolist() == [float(np.where(turns.finite, turns.lo, 0.0).sum())]


class TestNoColumns:
    """A platform narrower than one column takes nothing, and says so without an error."""

    def test_placing_on_a_platform_without_columns_fails_plainly(self) -> None:
        outline = Outline("sliver", rectangle(0.2, 5.0), 0.0, 1.0)
        nester = _Nester([outline], (0.5, 50.0), 0.0, True, 1.0, 15.0, None, 0.0)
        assert nester.columns == 0
        assert nester.place(nester.empty(), _Unit((outline,))) is False
