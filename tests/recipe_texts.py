"""Recipe texts shared by the executor unit tests and the ``preform-pipeline run`` e2e tests.

Imported as ``from tests.recipe_texts import full_steps`` (the repo root is on pythonpath).
"""

from __future__ import annotations

__all__ = ["FULL_STEPS", "PRINT_ONLY", "full_steps"]

#: Orient, support, lay out, check, estimate, save, screenshot, print: a whole job.
#: ``PER_BUILD`` stands for the most models per build; :func:`full_steps` fills it in.
FULL_STEPS = """\
steps:
  - auto_orient
  - auto_support
  - auto_layout
  - validate:
      fail_on: [out_of_bounds]
  - estimate
  - save_form
  - screenshot
  - print:
      printer: SimulatedForm4-1
      job_name: "{recipe}-{build}"
batching:
  max_models_per_build: PER_BUILD
  keep_cases_together: false
"""


def full_steps(per_build: int) -> str:
    """:data:`FULL_STEPS` with at most ``per_build`` models per build."""
    return FULL_STEPS.replace("PER_BUILD", str(per_build))


#: Builds that print and nothing more (a saved .form, then the print; two models a build):
#: for tests whose subject is what is sent, where the whole job's steps (orient, support,
#: lay out, check, estimate, screenshot) only made each run several times as long.
PRINT_ONLY = """\
steps:
  - save_form
  - print:
      printer: SimulatedForm4-1
      job_name: "{recipe}-{build}"
batching:
  max_models_per_build: 2
  keep_cases_together: false
"""
