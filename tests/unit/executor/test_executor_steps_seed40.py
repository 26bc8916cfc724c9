"""Seed 40's sample of ``executor/steps.py`` (session 22): the gaps its first run left.

A powder build's packing density by volume is the sintered powder over the whole bed for any
bed that holds powder, however small: only an empty bed reads 0. The simulator's bed is the
chamber's cross-section times the build height (27 ml per millimetre on a Fuse 1), so no
simulated build reaches a bed under a millilitre; the figures are given as the server's.
"""

from __future__ import annotations

import pytest

from preform_pipeline.api import PrintTimeEstimate, SlsMaterialUsage
from preform_pipeline.executor.steps import sls_figures


def _usage(total_ml: float, sintered_ml: float) -> SlsMaterialUsage:
    """The server's powder figures for a bed of ``total_ml`` with ``sintered_ml`` sintered
    (masses at a nylon's solid and loose densities, as the simulator gives them)."""
    sintered_kg = sintered_ml * 1.01 / 1000
    total_kg = sintered_kg + (total_ml - sintered_ml) * 0.45 / 1000
    return SlsMaterialUsage(
        total_powder_ml=total_ml,
        total_powder_kg=total_kg,
        total_sintered_powder_ml=sintered_ml,
        total_sintered_powder_kg=sintered_kg,
        mass_packing_density=sintered_kg / total_kg if total_kg > 0 else 0.0,
    )


class TestPackingDensityOfASmallBed:
    """A bed under a millilitre still gets its packing density by volume; an empty one 0."""

    @pytest.mark.parametrize(("total_ml", "sintered_ml"), [(0.8, 0.2), (1.0, 0.5)])
    def test_a_bed_of_at_most_a_millilitre_is_sintered_over_total(
        self, total_ml: float, sintered_ml: float
    ) -> None:
        figures = sls_figures(_usage(total_ml, sintered_ml),
                              PrintTimeEstimate(total_print_time_s=600.0))
        assert figures["packing_density"] == pytest.approx(sintered_ml / total_ml)
        assert (figures["total_powder_ml"], figures["sintered_powder_ml"]) == (
            total_ml, sintered_ml
        )

    def test_an_empty_bed_reads_zero_without_dividing_by_it(self) -> None:
        figures = sls_figures(_usage(0.0, 0.0), PrintTimeEstimate(total_print_time_s=0.0))
        assert figures["packing_density"] == 0.0
        assert figures["print_time_s"] == 0.0
