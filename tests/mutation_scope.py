"""Mutation testing of a few core modules, each mutant against the tests of its own area.

    nice -n 15 python -m tests.mutation_scope preform_pipeline/servers/health.py [...]
    nice -n 15 python -m tests.mutation_scope --changed [--base main]
    nice -n 15 python -m tests.mutation_scope --all
    nice -n 15 python -m tests.mutation_scope MODULE --mutants 'preform_pipeline.x.x_name*'
    nice -n 19 python -m tests.mutation_scope MODULE [...] --sample 150 --seed 19

The core modules are ``only_mutate`` of ``[tool.mutmut]`` in pyproject.toml (plain
``mutmut run`` uses that table as it is). A scoped run copies the project into
``.mutation/<scope>/`` with that table narrowed to the chosen modules and to the fast tests of
their area (:data:`AREA_TESTS`, else ``tests/unit/<package>/``: the tests mirror the package),
runs mutmut there, and prints killed / survived / no tests / timeout per module.
``--sample N --seed S`` runs a seeded random sample of N mutants of each module instead
(:func:`sample_mutants`): a score with a confidence interval where the whole module would take
hours.
docs/testing.md records the scores and explains the surviving mutants that are equivalent.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import random
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # mutmut brings ``toml`` on Python 3.10
    import toml as tomllib

from tests.openapi_contract import SPEC_DIR_ENV, expected_spec_dir, spec_dir

__all__ = [
    "AREA_TESTS",
    "core_patterns",
    "main",
    "module_mutants",
    "narrowed_config",
    "sample_mutants",
    "test_dirs_for",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
WORK_ROOT = REPO_ROOT / ".mutation"
# docs: a few tests check that a page lists what the code serves (the simulator's routes).
_COPIED = ("preform_pipeline", "tests", "sample_models", "recipes", "schemas", "docs",
           "pyproject.toml")
_FPS_TESTS = (
    "tests/unit/simulator/test_sim_fps_settings.py",
    "tests/unit/simulator/test_sim_hostile_fps.py",  # s31: knobs no print setting has
    "tests/unit/simulator/test_engine_scenes.py",
    "tests/unit/simulator/test_engine_files.py",
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "mutants")

_STORE_SQLITE_TESTS = tuple(
    f"tests/unit/store/test_store_{name}.py"
    for name in ("sqlite", "states", "approval", "waiting", "recovery", "migrations",
                 "core_rules", "sqlite_plumbing", "core_rows",
                 "notices",  # s27: notices said once
                 "web_budget",  # s28: the Web API budget every process shares
                 "history_cases",  # s29: a page of history, filtered by the database
                 "printer_claims",  # s29: printers claimed in the store, across processes
                 "history_page_reads",  # s30: a page's trails in one statement
                 "find_by_hashes",  # s35: the jobs of many digests in one read
                 "superseded_cases",  # s47: the jobs of many cases in one read
                 "get_jobs")  # s36: many jobs by id in one read
)

_EXECUTOR_RUN_TESTS = tuple(
    f"tests/unit/executor/test_executor_{name}.py"
    for name in ("runner_rules", "job_names", "run_order", "schedule", "step_names", "steps",
                 "feasibility", "case_checks", "runner", "retry_servers", "blocking_steps",
                 "drop_case", "units_sent", "legend", "sls_report", "outputs", "progress_counts",
                 "reasons_named", "report", "report_schema", "overflow_rules", "final_intake",
                 "run_events", "model_edits")
)

#: The steps' own end-to-end files (validation, print, preflight, requests, progress).
_EXECUTOR_STEPS_TESTS = tuple(
    f"tests/unit/executor/test_executor_steps_{name}.py"
    for name in ("validation", "printing", "preflight", "requests", "drain_holes", "labels")
)
#: Session 13, the printing half of the steps (print, preflight, estimate, verify, outputs).
_EXECUTOR_STEPS_TESTS += tuple(
    f"tests/unit/executor/test_executor_steps_tail_{name}.py"
    for name in ("print", "checks", "outputs")
)

#: Session 13's files for the scene half of the steps (layout, labels, imports, holes, drops):
#: every ``test_executor_steps_scene_*.py`` there is.
_EXECUTOR_STEPS_SCENE_TESTS = tuple(
    sorted(p.relative_to(REPO_ROOT).as_posix() for p in
           (REPO_ROOT / "tests/unit/executor").glob("test_executor_steps_scene_*.py"))
)
#: Session 14's files for the functions run whole (preflight, screenshot, outputs, imports...).
_EXECUTOR_STEPS_S14_TESTS = tuple(
    sorted(p.relative_to(REPO_ROOT).as_posix() for p in
           (REPO_ROOT / "tests/unit/executor").glob("test_executor_steps_s14_*.py"))
)
#: Session 15's files for the functions run whole (the save, orientation, supports...).
_EXECUTOR_STEPS_S15_TESTS = tuple(
    sorted(p.relative_to(REPO_ROOT).as_posix() for p in
           (REPO_ROOT / "tests/unit/executor").glob("test_executor_steps_s15_*.py"))
)
#: Session 16's files (a blocking request the server never answers ends at the step's limit).
_EXECUTOR_STEPS_S16_TESTS = tuple(
    sorted(p.relative_to(REPO_ROOT).as_posix() for p in
           (REPO_ROOT / "tests/unit/executor").glob("test_executor_steps_s16_*.py"))
)
#: Session 18's files for the functions run whole (the screenshot's legend, the layout).
_EXECUTOR_STEPS_S18_TESTS = tuple(
    sorted(p.relative_to(REPO_ROOT).as_posix() for p in
           (REPO_ROOT / "tests/unit/executor").glob("test_executor_steps_s18_*.py"))
)

#: The geometry files without a hypothesis test (see the readers' entries in AREA_TESTS).
_GEOMETRY_PLAIN_TESTS = tuple(
    f"tests/unit/geometry/test_geometry_{name}.py"
    for name in ("readers", "hostile", "samples", "stl_details", "stl_sizes", "obj_errors",
                 "analysis", "orientation", "threemf_parts", "threemf_details", "stl_short_text",
                 "stl_cut_headers", "stl_stream_memory", "counted_wording", "stl_odd_records",
                 "stl_edges", "line_ends", "long_numbers", "numerals", "absurd_sizes",
                 "object_ids", "hidden_bytes")
)

#: The tests each mutant of a module (path prefix) may run, where its package folder alone is
#: wrong: the print owner is mostly exercised through verify and dispatch; the hot folder's and
#: the executor's daemon and end-to-end tests start real servers and would make every mutant
#: run for minutes, so only their fast files are named. mutmut then runs, per mutant, only the
#: named tests that execute the mutated function.
AREA_TESTS: dict[str, tuple[str, ...]] = {
    # s32: the Host rule alone (the other web tests start a server each and never vary it)
    "preform_pipeline/web/hosts.py": ("tests/unit/web/test_web_hosts.py",),
    # s42: the new rules, each against its own file (the command's tests run it in-process)
    "preform_pipeline/secretargs.py": ("tests/unit/test_secretargs.py",),
    "preform_pipeline/plan/advice.py": ("tests/unit/plan/test_plan_advice.py",),
    "preform_pipeline/commands/_store_history.py": (
        "tests/unit/commands/test_cmd_store_history.py",),
    "preform_pipeline/diskspace.py": ("tests/unit/test_diskspace.py",
                                      "tests/unit/hotfolder/test_hotfolder_room_retries.py"),
    # s43: the new rules, each against the files that test it (under a second each, the
    # dashboard's security file apart: it starts a server a test, about 13 s in all)
    "preform_pipeline/commands/_run_deeds.py": ("tests/unit/commands/test_cmd_run_deeds.py",),
    "preform_pipeline/verify/pace.py": ("tests/unit/verify/test_verify_pace.py",
                                        "tests/unit/verify/test_verify_poller_first_polls.py",
                                        # the credit drawn only after a quiet spell (rv43)
                                        "tests/unit/verify/test_verify_pace_shared.py"),
    # with the limiter's file, which reads seconds, dates and resume times (moved from it)
    "preform_pipeline/retryafter.py": ("tests/unit/api/test_api_retry_after.py",
                                       "tests/unit/cloud/test_cloud_client_retry_after.py",
                                       "tests/unit/cloud/test_cloud_ratelimit.py",
                                       # s45: longest_wait's three bounds and their ties
                                       "tests/unit/test_retryafter_longest_wait.py"),
    "preform_pipeline/userpath.py": ("tests/unit/test_userpath.py",
                                     "tests/unit/cloud/test_cloud_credentials.py"),
    "preform_pipeline/crash.py": ("tests/unit/test_crash_shorten.py",),
    "preform_pipeline/commands/service.py": ("tests/unit/commands/test_cmd_service.py",),
    "preform_pipeline/web/auth.py": ("tests/unit/web/test_web_security.py",),
    "preform_pipeline/web/app.py": ("tests/unit/web/test_web_security.py",),
    # s44: the path map against its own file and the executor's reasons that quote its hint;
    # YAML errors against the files that read a recipe, a settings file and bad indentation
    "preform_pipeline/servers/pathmap.py": ("tests/unit/servers/test_servers_pathmap.py",
                                            "tests/unit/executor/test_executor_path_map_reason.py"),
    "preform_pipeline/yamlerrors.py": ("tests/unit/test_yamlerrors_indentation.py",
                                       "tests/unit/recipes/test_recipe_loader.py",
                                       "tests/unit/settings/test_settings_load.py"),
    # s45: the classification of PostgreSQL's failures against its own file (the texts) and
    # the store's causes (PostgreSQL's own words, with the mutation cluster); the paced
    # bad-request events against its classes of the dashboard's hostile requests (a server
    # each, a few seconds)
    "preform_pipeline/store/pgerrors.py": ("tests/unit/store/test_store_pgerrors.py",
                                           "tests/unit/store/test_store_postgres_causes.py"),
    "preform_pipeline/web/badrequests.py": (
        "tests/unit/web/test_web_badrequests.py",
        "tests/unit/web/test_web_hostile_requests.py::TestRequestsNoParserTakesAreSaid",
        "tests/unit/web/test_web_hostile_requests.py::TestUvicornsOtherLines",
        "tests/unit/web/test_web_hostile_requests.py::TestTheProtocolHook"),
    # s45: whether a starting watch waits (its own servers, stopped and started; the clock
    # seam), by name; a refused request's start as the dashboard's and simulators' logs show it
    "preform_pipeline/hotfolder/storewait.py": (
        "tests/unit/hotfolder/test_hotfolder_storewait.py",
        "tests/unit/hotfolder/test_hotfolder_storewait_causes.py"),
    "preform_pipeline/wording.py": (
        "tests/unit/test_wording_request_start.py",
        "tests/unit/web/test_web_hostile_requests.py::TestRequestsNoParserTakesAreSaid",
        "tests/unit/simulator/test_sim_slow_heads.py"),
    # s45: a job report's outcome encoded once per build; a print's end the Dashboard
    # simulator reads from its job file
    "preform_pipeline/hotfolder/outcomes.py": (
        "tests/unit/hotfolder/test_hotfolder_outcome_reports.py",),
    "preform_pipeline/simulator/cloud/timeline.py": (
        "tests/unit/simulator/test_dashboard_outcomes.py",),
    "preform_pipeline/recipes/orientation.py": (
        "tests/unit/recipes/test_recipe_orientations.py",
        "tests/unit/recipes/test_recipe_hostile_values.py"),
    # Named before the printing/ prefix (the first matching entry wins). Approval: the store's
    # approval rules and the dashboard's approve / reject pages (SQLite only under mutmut).
    "preform_pipeline/printing/approval.py": ("tests/unit/store/test_store_approval.py",
                                              "tests/unit/web/test_web_pages.py",
                                              "tests/unit/web/test_web_security.py",
                                              "tests/unit/printing/test_printing_approval_s14.py",
                                              # s26: a refusal names the store's jobs command
                                              "tests/unit/printing/test_printing_jobs_hints.py"),
    # The fleet folder: its feed and the locator that reads it; not verify's and dispatch's
    # end-to-end files, which reach it only through the same locator.
    "preform_pipeline/printing/fleetfolder.py": ("tests/unit/printing",),
    # s33: a send's holder, also read back from a migrated store (SQLite under mutmut) and
    # judging a `run`'s claims.
    "preform_pipeline/printing/holder.py": ("tests/unit/printing", "tests/unit/verify",
                                            "tests/unit/dispatch",
                                            "tests/unit/store/test_store_send_holder_migration.py",
                                            "tests/unit/executor/test_executor_ledger.py"),
    "preform_pipeline/printing/": ("tests/unit/printing", "tests/unit/verify",
                                   "tests/unit/dispatch"),
    "preform_pipeline/hotfolder/intake.py": (
        "tests/unit/hotfolder/test_hotfolder_intake.py",
        "tests/unit/hotfolder/test_hotfolder_intake_safety.py",
        "tests/unit/hotfolder/test_hotfolder_intake_outcomes.py",
        "tests/unit/hotfolder/test_hotfolder_crash_windows.py",
        "tests/unit/hotfolder/test_hotfolder_intake_overtaken.py",
        "tests/unit/hotfolder/test_hotfolder_intake_s21.py",  # s21: unreadable sidecar, run's jobs
        "tests/unit/hotfolder/test_hotfolder_intake_seed40.py",  # s22: empty folder, run's jobs
        "tests/unit/hotfolder/test_hotfolder_intake_seed41.py",  # s23: a case taken via a link
        # s23: a cut-short move to failed/ against a put-back (a real PostgreSQL farm)
        "tests/unit/hotfolder/test_hotfolder_node_put_back.py",
        "tests/unit/hotfolder/test_hotfolder_intake_moved.py",  # s23: the record refused
        # s23: a move to another disk cut between its rename and the source's removal
        "tests/unit/hotfolder/test_hotfolder_cut_move_across_disks.py",
        # s24: the other cuts (a differing copy, out of the inbox, sidecars, links) and a
        # decided file's move that never began
        "tests/unit/hotfolder/test_hotfolder_cut_moves_finished.py",
        # s25: a take into a processing/ on another disk, cut after its rename
        "tests/unit/hotfolder/test_hotfolder_cut_take.py",
        # s30: notes of ours dropped back with their case are removed, not taken
        "tests/unit/hotfolder/test_hotfolder_notes_dropped_back.py",
        # s37: a case's take cut before a rename, met by another farm node (PostgreSQL)
        "tests/unit/hotfolder/test_hotfolder_cut_before_rename.py",
        # s38: a move into processing/ that fails: tried again, then failed/ whole
        "tests/unit/hotfolder/test_hotfolder_take_move_refused.py",
        # s38: the claim a case was taken under, recorded (a real PostgreSQL farm)
        "tests/unit/hotfolder/test_hotfolder_case_claim_covers_rest.py",
        # s39, s40: a case held by a part set aside (its hold in the store), a cut take's
        # files held with their case, one a build had already said
        "tests/unit/hotfolder/test_hotfolder_set_aside.py",
        "tests/unit/hotfolder/test_hotfolder_case_held_everywhere.py",
        # s39: a loose file through the case rule (over the readers' size limit)
        "tests/unit/hotfolder/test_hotfolder_intake_oversize.py",
        # s41: a case folder emptied by setting aside ends its holds; a loose file's line
        "tests/unit/hotfolder/test_hotfolder_case_hold_ends.py",
        "tests/unit/hotfolder/test_hotfolder_case_held_said.py",
    ),
    # Process identities (s31): their own tests, the store's printer claims that judge holders
    # by them (SQLite under mutmut) and the daemon lock's rules that compare them; s32: the
    # reaper's records of other instances.
    "preform_pipeline/liveness.py": ("tests/unit/test_liveness_instance.py",
                                     "tests/unit/test_liveness_start_ticks.py",
                                     "tests/unit/store/test_store_printer_claims.py",
                                     "tests/unit/store/test_store_daemon_lock_rules.py",
                                     "tests/unit/servers/test_servers_reaper_instances.py"),
    # Held records (s35): their own tests, the daemon lock's rules and the fleet folder's
    # members that judge by them.
    "preform_pipeline/heldfile.py": ("tests/unit/test_heldfile.py",
                                     "tests/unit/store/test_store_daemon_lock_rules.py",
                                     "tests/unit/simulator/test_fleet_users.py"),
    # Tracking: the verify tests, and dispatch's own choices under the printer claims the
    # batches share with it (s29).
    "preform_pipeline/verify/tracking.py": ("tests/unit/verify",
                                            "tests/unit/dispatch/test_dispatch_claims.py"),
    # The poller: the verify tests (the service and tracking drive it), the fleet folder
    # read as a feed, and the hot folder's follow-up that polls through it.
    "preform_pipeline/verify/poller.py": (
        "tests/unit/verify",
        "tests/unit/printing/test_printing_fleet_feed.py",
        "tests/unit/hotfolder/test_hotfolder_followup.py",
    ),
    # The hot folder's worker runs only under a daemon: the files that run batches in this
    # process against simulators (under a second each). Not the files whose daemon runs in
    # a child process (test_hotfolder_temporaries.py, test_hotfolder_followup_owed.py:
    # mutmut cannot see which functions a child ran, and they take 13 to 34 s each).
    "preform_pipeline/hotfolder/worker.py": (
        "tests/unit/hotfolder/test_hotfolder_daemon.py",
        "tests/unit/hotfolder/test_hotfolder_batch_store_away.py",
        "tests/unit/hotfolder/test_hotfolder_crash_windows.py",
        "tests/unit/hotfolder/test_hotfolder_drop_case.py",
        "tests/unit/hotfolder/test_hotfolder_set_aside.py",
        # Session 19's: sidecar targets, local copies, notes, holds, a lost `sent` write.
        "tests/unit/hotfolder/test_hotfolder_worker_s19.py",
        "tests/unit/hotfolder/test_hotfolder_worker_gaps.py",  # seed 34's open gaps
        "tests/unit/hotfolder/test_hotfolder_worker_seed35.py",  # dry run, pool, copies, reports
        "tests/unit/hotfolder/test_hotfolder_worker_w2.py",  # session 19 w2: targets, settling
        "tests/unit/hotfolder/test_hotfolder_worker_w3.py",  # targets split, recipe gone
        "tests/unit/hotfolder/test_hotfolder_worker_w1.py",  # _run_live whole: plans, units
        "tests/unit/hotfolder/test_hotfolder_worker_small.py",  # session 20: the never-run ones
        "tests/unit/hotfolder/test_hotfolder_batch_balanced.py",  # s25: planned for the pool
        "tests/unit/hotfolder/test_hotfolder_worker_live.py",  # _run_live 100-251: dispatch, stops
        "tests/unit/hotfolder/test_hotfolder_worker_batch.py",  # s20: run_batch, refused cases
        "tests/unit/hotfolder/test_hotfolder_split_after_drop.py",  # a split after a drop
        "tests/unit/hotfolder/test_hotfolder_batch_crash.py",  # a batch stopped by a bug
        "tests/unit/hotfolder/test_hotfolder_worker_seed37.py",  # seed 37: a crash, store away
        "tests/unit/hotfolder/test_hotfolder_worker_seed39.py",  # seed 39: cancelled as settled
        "tests/unit/hotfolder/test_hotfolder_worker_seed40.py",  # seed 40: cancel, then a crash
        "tests/unit/hotfolder/test_hotfolder_worker_seed41.py",  # seed 41: moved as it is settled
        "tests/unit/hotfolder/test_hotfolder_batch_crash_held.py",  # s22: held jobs, a crash
        # s23: builds a run left when the store failed it, settled while the daemon runs
        "tests/unit/hotfolder/test_hotfolder_builds_left_by_store.py",
        # s28: a build's, a dropped case's and a crash's reasons name files as dropped
        "tests/unit/hotfolder/test_hotfolder_reasons_as_dropped.py",
        # s29: a run the store stopped leaves no printer claimed
        "tests/unit/hotfolder/test_hotfolder_claims_released.py",
        # s35: every file that goes nowhere said on the console (_fail_said)
        "tests/unit/hotfolder/test_hotfolder_console_refusals.py",
    ),
    # The pool's local servers: one simulator shared by the module, not the integration tests.
    "preform_pipeline/servers/pool.py": (
        "tests/unit/servers/test_servers_pool.py",
        "tests/unit/servers/test_servers_pool_leases.py",
        "tests/unit/servers/test_servers_pool_local.py",
        "tests/unit/servers/test_servers_pool_edges.py",
        "tests/unit/servers/test_servers_pool_forgotten.py",
        "tests/unit/servers/test_servers_pool_signal_handlers.py",  # pools in the main thread
        "tests/unit/servers/test_servers_pool_s21.py",  # s21: the leased servers' path maps
        "tests/unit/servers/test_servers_pool_s21b.py",  # s21: a pool closed mid-launch
        "tests/unit/servers/test_servers_pool_seed40.py",  # s22: starting state, local map errors
        "tests/unit/servers/test_servers_pool_seed41.py",  # s23: how long wait_for waits
        "tests/unit/servers/test_servers_pool_remote_down_said.py",  # s45: how it is asked again
    ),
    # Every store test builds Jobs: only the model's own rules, not the SQL behind them.
    "preform_pipeline/store/model.py": ("tests/unit/store/test_store_model_rules.py",),
    # s34: failed jobs a later job printed; s47: or a later export of the same case member.
    "preform_pipeline/store/superseded.py": ("tests/unit/store/test_store_superseded.py",
                                             "tests/unit/store/test_store_superseded_cases.py"),
    # The executor: each module against the files that test it directly (the runner's own
    # tests drive simulators for seconds each; a mutant runs only the ones that execute it).
    # s36: a file a run rejected, passed over (and its model not claimed again) by real
    # `run` command lines on a real SQLite store.
    "preform_pipeline/executor/said_rejections.py": (
        "tests/integration/test_run_rejected_once.py",),
    "preform_pipeline/executor/feasibility.py": (
        "tests/unit/executor/test_executor_feasibility.py",
        "tests/unit/executor/test_executor_case_checks.py",
    ),
    "preform_pipeline/executor/outputs.py": (
        "tests/unit/executor/test_executor_outputs.py",
        "tests/unit/executor/test_executor_output_claims.py",
        "tests/unit/executor/test_executor_outputs_new_folder.py",
        "tests/unit/executor/test_executor_staging.py",  # s32: a save placed at a free name
    ),
    # s34: the empty outputs an earlier version's killed save left, listed once.
    "preform_pipeline/executor/leftover_outputs.py": (
        "tests/unit/executor/test_executor_leftover_outputs.py",),
    # s31: the staging folder the servers save into, and its sweep at a run's start; s47:
    # a run's saves that leave it to the run's end (a run against the simulator, 1-2 s).
    "preform_pipeline/executor/staging.py": ("tests/unit/executor/test_executor_staging.py",
                                             "tests/unit/executor/test_executor_runner_staging.py"),
    # s47: a run's output folder and its fields, moved out of the runner, against the files
    # that call them directly (the runs that use them start simulators)
    "preform_pipeline/executor/runroot.py": ("tests/unit/executor/test_executor_runroot.py",
                                             "tests/unit/executor/test_executor_report.py",
                                             "tests/unit/executor/test_executor_feasibility.py",
                                             "tests/unit/executor/test_executor_case_checks.py"),
    "preform_pipeline/executor/state.py": (
        "tests/unit/executor/test_executor_result_queries.py",
        "tests/unit/executor/test_executor_progress_counts.py",
    ),
    # hooks.py holds the print step's Protocols and four status texts: no function body for
    # mutmut to mutate (0 mutants); the file whose own hooks stand in for printing, if any.
    "preform_pipeline/executor/hooks.py": ("tests/unit/executor/test_executor_progress_counts.py",),
    "preform_pipeline/executor/ledger.py": (
        "tests/unit/executor/test_executor_ledger.py",
        "tests/unit/executor/test_executor_ledger_outcomes.py",
        "tests/unit/executor/test_executor_ledger_split_overtaken.py",
    ),
    # overflow.py: its rules, and the fast simulator runs that shed models from a scene (the
    # layout step's carry, the final build's intake; 2-3 s each): shed_overflow, _choose;
    # session 19's runs of the final build laying out before its wait (FinalIntake).
    "preform_pipeline/executor/overflow.py": (
        "tests/unit/executor/test_executor_final_intake.py",
        "tests/unit/executor/test_executor_final_intake_wait.py",
        "tests/unit/executor/test_executor_overflow_rules.py",
        "tests/unit/executor/test_executor_steps_scene_layout.py",
        "tests/unit/executor/test_executor_runner_intake_requests.py",
        "tests/unit/executor/test_executor_overflow_shed.py",
        # session 21: a code-only "does not fit", a delete the server never answers
        "tests/unit/executor/test_executor_overflow_s21.py",
    ),
    "preform_pipeline/executor/progress.py": (
        "tests/unit/executor/test_executor_progress_counts.py",
        "tests/unit/executor/test_executor_progress_lines.py",
        "tests/unit/executor/test_executor_progress_s21.py",  # s21: the run bar from no build
    ),
    # runner.py and steps.py: every executor test file that runs builds or steps (in-process
    # simulators, up to seconds per test; about 80 s together on the loaded machine), not the
    # store, report-line and query files, which never reach them. Sampled (docs/testing.md).
    # runner.py also against its own files (test_executor_runner_*.py of session 12: the
    # grace period, Ctrl-C, the attempt loop, lease deadlines and carries on the run's clock;
    # session 14's build reports and a carry cancelled as it is added; session 15's build
    # at fault on the real pool, local copies imported, builds queued behind a stuck step,
    # where carried models go as the result and the log say it, a step's progress by name,
    # step options in the API's names, the send's holder, the checkpoint folder's bookkeeping;
    # session 16's checkpoint already gone when the next replaces it, and a checkpoint's save;
    # session 18's checkpoint load that times out before any step of its attempt; and the
    # store-outage file, the only one that reads an attempt's ``store_outage``).
    "preform_pipeline/executor/runner.py": _EXECUTOR_RUN_TESTS + tuple(
        f"tests/unit/executor/test_executor_runner_{name}.py"
        for name in ("cancel_grace", "attempt_loop", "lease_deadline", "carry_timing", "run_end",
                     "journal", "run_result", "checkpoints", "drop_callback",
                     "two_servers", "step_walk", "intake_requests", "pool_accounting",
                     "scene_cleanup", "build_times", "build_report", "cancelled_carry",
                     "build_at_fault", "import_from", "queued_cancel", "carry_events",
                     "step_progress", "step_options", "send_holder",
                     "checkpoint_bookkeeping", "checkpoint_gone", "checkpoint_save",
                     "split_reason", "failure_events", "resume_timeout")
    ) + ("tests/unit/executor/test_executor_store_outage.py",
         # session 19: the final build's layout before its wait, and its second layout.
         "tests/unit/executor/test_executor_final_intake_wait.py",
         # session 19: a printed build's `build_finished` names its print job.
         "tests/unit/executor/test_executor_build_finished_job.py",
         # s22 seed 40: a split after a dropped case (the only file reaching it), the
         # final build's place in a split, a refusal with no code, clients after a failure,
         # the final build's second layout, the run's {material} field
         "tests/unit/executor/test_executor_split_after_drop.py",
         "tests/unit/executor/test_executor_runner_seed40.py",
         # s23 seed 41: the output root resolved once per run, which the runner hands to
         # each build's steps (the only file switching the root's link during a run)
         "tests/unit/executor/test_executor_steps_s15_outputs.py"),
    # The start order's split and dispatch (in plan/ since session 24): its own file and
    # run_order's.
    "preform_pipeline/plan/schedule.py": ("tests/unit/executor/test_executor_schedule.py",
                                          "tests/unit/executor/test_executor_schedule_budget.py",
                                          "tests/unit/executor/test_executor_run_order.py"),
    # Session 24: builds balanced over servers, the module's own file, and the start
    # order's (build_work moved here from runner.py).
    "preform_pipeline/plan/balance.py": ("tests/unit/plan/test_plan_balance.py",
                                         "tests/unit/executor/test_executor_schedule.py"),
    "preform_pipeline/executor/steps.py": (_EXECUTOR_RUN_TESTS + _EXECUTOR_STEPS_TESTS
                                           + _EXECUTOR_STEPS_SCENE_TESTS
                                           + _EXECUTOR_STEPS_S14_TESTS
                                           + _EXECUTOR_STEPS_S15_TESTS
                                           + _EXECUTOR_STEPS_S16_TESTS
                                           + _EXECUTOR_STEPS_S18_TESTS
                                           # layout's shed and relayout (session 18: 62)
                                           + ("tests/unit/executor/"
                                              "test_executor_overflow_shed.py",
                                              # s22 seed 40: a powder bed under 1 ml
                                              "tests/unit/executor/"
                                              "test_executor_steps_seed40.py",
                                              # s25: an .fps recipe's {material}
                                              "tests/unit/executor/"
                                              "test_executor_runner_seed40.py",
                                              # s23: a local copy gone mid-import
                                              "tests/unit/hotfolder/"
                                              "test_hotfolder_copy_gone_mid_import.py")),
    # The store's SQL rules (sqlcore) and SQLite plumbing: the conformance files on SQLite
    # only (the store conftest deselects PostgreSQL under mutmut); not the process races,
    # the hypothesis state machine or the daemon lock, which take seconds each.
    "preform_pipeline/store/sqlcore.py": _STORE_SQLITE_TESTS,
    # SQLite's plumbing (opening, migrating, errors, transactions): the files that test it;
    # every store test opens a store, so the whole SQLite set made each mutant slow.
    "preform_pipeline/store/sqlite.py": (
        "tests/unit/store/test_store_sqlite.py",
        "tests/unit/store/test_store_migrations.py",
        "tests/unit/store/test_store_sqlite_plumbing.py",
        "tests/unit/store/test_store_sqlite_opened.py",
        "tests/unit/store/test_store_long_names.py",  # s30: names near 255 bytes
        "tests/unit/store/test_store_history_page_reads.py",  # s30: on_statement
    ),
    # PostgreSQL only: run with PREFORM_PIPELINE_MUTATION_PG_PORT set (docs/testing.md), else
    # the store conftest deselects every test that needs the server.
    "preform_pipeline/store/leases.py": ("tests/unit/store/test_store_leases.py",
                                         "tests/unit/store/test_store_leases_rules.py",
                                         "tests/unit/store/test_store_inbox_claim_stall.py",
                                         "tests/unit/store/test_store_lease_short_margin.py",
                                         "tests/unit/store/test_store_leases_default_reason.py",
                                         "tests/unit/store/test_store_fenced.py",
                                         "tests/unit/store/test_store_fenced_rules.py",
                                         # seed 38: a claimed build made with the db away
                                         "tests/unit/store/test_store_seed38.py",
                                         # whole run: a takeover's event, a ran-out move
                                         "tests/unit/store/test_store_whole_s21.py",
                                         # s21-farm2: the orphans adopted are the claims' own
                                         "tests/unit/store/test_store_leases_own_claims.py",
                                         # s21-farm3: adopt_jobs/may_settle by own claims
                                         "tests/unit/store/test_store_leases_claims_of_builds.py",
                                         # s30: printer claims by the database's clock
                                         "tests/unit/store/test_store_printer_claims.py",
                                         # s38: a case's claim covers its rest; own claims
                                         # by the hash a case was claimed under
                                         "tests/unit/hotfolder/"
                                         "test_hotfolder_case_claim_covers_rest.py"),
    "preform_pipeline/store/fenced.py": ("tests/unit/store/test_store_fenced.py",
                                         "tests/unit/store/test_store_fenced_rules.py",
                                         "tests/unit/store/test_store_fenced_races.py",
                                         "tests/unit/store/test_store_fenced_confirmed.py",
                                         # seed 38: a build lost during the renewal pass
                                         "tests/unit/store/test_store_seed38.py",
                                         # whole run: the idle limit, builds moved mid-pass
                                         "tests/unit/store/test_store_whole_s21.py"),
    # PostgreSQL's plumbing (connecting, migrating, errors) and, through the leases, its
    # transactions; test_store_sqlite.py adds the conformance runs on PostgreSQL (the SQLite
    # runs never call this module, so mutmut does not give them its mutants), and
    # test_store_core_rules.py the keys already taken (an insert that conflicts on its key).
    "preform_pipeline/store/postgres.py": ("tests/unit/store/test_store_postgres_plumbing.py",
                                           "tests/unit/store/test_store_leases.py",
                                           "tests/unit/store/test_store_leases_rules.py",
                                           "tests/unit/store/test_store_fenced.py",
                                           "tests/unit/store/test_store_fenced_rules.py",
                                           "tests/unit/store/test_store_sqlite.py",
                                           "tests/unit/store/test_store_core_rules.py",
                                           # s22: a server that never answers the connection
                                           "tests/unit/store/test_store_seed40.py",
                                           # s23: one snapshot per read, a quiet database
                                           # log, a user that may not create tables
                                           "tests/unit/store/test_store_postgres_s23.py",
                                           # s30: the statements a page runs (on_statement)
                                           "tests/unit/store/test_store_history_page_reads.py",
                                           # s42: libpq's cause first (cause_first)
                                           "tests/unit/store/test_store_postgres_causes.py"),
    # The store's small modules, each against the files that test it directly (the whole
    # store folder holds the process races and the state machine: seconds per mutant).
    # presence.py and migrate.py need PREFORM_PIPELINE_MUTATION_PG_PORT, like leases.py.
    "preform_pipeline/store/content.py": ("tests/unit/store/test_store_content_hash.py",),
    # Job keys: their own two files and the core rules that find a job by its key (the whole
    # store folder would bring the process races and the hypothesis state machine, which
    # refuses mutmut's runner).
    "preform_pipeline/store/keys.py": ("tests/unit/store/test_store_keys.py",
                                       "tests/unit/store/test_store_keys_edges.py",
                                       "tests/unit/store/test_store_core_rules.py"),
    "preform_pipeline/store/pgurl.py": ("tests/unit/store/test_store_pgurl.py",
                                        "tests/unit/store/test_store_opening.py",
                                        # s22: the password file under an ASCII locale
                                        "tests/unit/store/test_store_seed40.py",
                                        # s42: a login libpq would misread, refused, hidden
                                        "tests/unit/store/test_store_url_login.py"),
    "preform_pipeline/store/opening.py": ("tests/unit/store/test_store_opening.py",),
    "preform_pipeline/store/presence.py": ("tests/unit/store/test_store_presence.py",),
    "preform_pipeline/store/migrate.py": ("tests/unit/store/test_store_migrate_copy.py",
                                          # s22: URI characters in the path, a dropped row
                                          "tests/unit/store/test_store_seed40.py"),
    "preform_pipeline/store/daemon_lock.py": ("tests/unit/store/test_store_daemon_lock.py",
                                              "tests/unit/store/test_store_daemon_lock_rules.py",
                                              "tests/unit/store/test_store_daemon_lock_rounds.py",
                                              # s30: a store name near 255 bytes
                                              "tests/unit/store/test_store_long_names.py"),
    # The STL and OBJ readers: every geometry file without a hypothesis test (hypothesis
    # refuses a test method run twice in one process, as mutmut's runner does: "called from
    # multiple different executors"; the whole folder failed mutmut's clean run in session 15).
    "preform_pipeline/geometry/stl.py": _GEOMETRY_PLAIN_TESTS,
    "preform_pipeline/geometry/obj.py": (
        *_GEOMETRY_PLAIN_TESTS,
        "tests/unit/geometry/test_geometry_obj_s21.py",  # s21: binary text, empty last face
        "tests/unit/geometry/test_geometry_obj_slices.py",  # s21: many slices read as one
    ),
    # The geometry tests that read 3MF files (hypothesis refuses to run the property tests
    # under mutmut's test runner: "called from multiple different executors").
    "preform_pipeline/geometry/threemf.py": (
        "tests/unit/geometry/test_geometry_readers.py",
        "tests/unit/geometry/test_geometry_hostile.py",
        "tests/unit/geometry/test_geometry_samples.py",
        "tests/unit/geometry/test_geometry_threemf_parts.py",
        "tests/unit/geometry/test_geometry_threemf_details.py",
        "tests/unit/geometry/test_geometry_threemf_s21.py",  # s21: a relationship without target
        "tests/unit/geometry/test_geometry_numerals.py",  # s34: numbers as the specification's
        "tests/unit/geometry/test_geometry_object_ids.py",  # s35: ids as numbers, transforms
    ),
    # s34: the formats' number rules (the readers' tests; the guard's property test is apart)
    "preform_pipeline/geometry/numerals.py": (
        *_GEOMETRY_PLAIN_TESTS,
        "tests/unit/geometry/test_geometry_obj_slices.py",
    ),
    # s26: the simulators as Formlabs' clients meet them: the route table (the deprecated
    # operations on the most recent scene) and the console log a launcher never reads.
    "preform_pipeline/simulator/routes.py": (
        "tests/unit/simulator/test_sim_server_routing.py",
        "tests/unit/simulator/test_sim_server_errors.py",
        "tests/conformance/test_simulator_deprecated.py",
    ),
    "preform_pipeline/simulator/logsink.py": ("tests/unit/simulator/test_sim_logsink.py",),
    # s27: the engine's pricing of an operation (estimate_work and the scene it acts on), by
    # the files that price operations; the engine's other functions are not measured. Not the
    # deprecated routes' conformance flow: under mutmut's tracing its screenshot outlived the
    # flow's 30 s wait on a loaded machine (the latency file prices those routes).
    "preform_pipeline/simulator/engine.py": (
        "tests/unit/simulator/test_sim_server_latency.py",
        "tests/unit/simulator/test_engine_scenes.py",
        "tests/unit/simulator/test_engine_outline_layout.py",
        "tests/unit/simulator/test_sim_hostile_requests.py",  # what it refuses
        "tests/unit/simulator/test_engine_models.py",  # import and update
        "tests/unit/simulator/test_engine_files.py",  # s32: screenshots, .webp, flyarounds
    ),
    # s27: what the simulator refuses of hostile requests, with the files of each area
    "preform_pipeline/simulator/bodies.py": (
        "tests/unit/simulator/test_sim_hostile_requests.py",
        "tests/unit/simulator/test_sim_hostile_fps.py",  # s31: numbers beyond a float
        "tests/unit/simulator/test_engine_files.py",
        "tests/unit/simulator/test_sim_server_errors.py",
    ),
    "preform_pipeline/simulator/layout.py": (
        "tests/unit/simulator/test_sim_hostile_requests.py",
        "tests/unit/simulator/test_engine_layout.py",
    ),
    "preform_pipeline/simulator/outline_pack.py": (
        "tests/unit/simulator/test_sim_hostile_requests.py",
        "tests/unit/simulator/test_engine_layout.py",
    ),
    # s44: the interference check on placed shadows (and raft rims, via the engine)
    "preform_pipeline/simulator/contact.py": (
        "tests/unit/simulator/test_sim_shadow_contact.py",
        "tests/unit/simulator/test_engine_layout.py",
    ),
    # s44: a refused layout placed as planned, judged by the server, kept or put back
    "preform_pipeline/executor/planned_layout.py": (
        "tests/unit/executor/test_executor_planned_layout.py",
        "tests/unit/executor/test_executor_overflow_shed.py",
    ),
    "preform_pipeline/simulator/server.py": (
        "tests/unit/simulator/test_sim_hostile_requests.py",
        "tests/unit/simulator/test_sim_server_errors.py",
        "tests/unit/simulator/test_sim_slow_bodies.py",  # s28: a body that never comes
        "tests/unit/simulator/test_sim_slow_heads.py",  # s29: nor its line and headers
    ),
    # s29: PreForm's .fps files (written, read, refused) and the SLA estimate under their
    # knobs, over real HTTP; the scene and file tests that create scenes from .fps files.
    "preform_pipeline/simulator/fps.py": _FPS_TESTS,
    "preform_pipeline/simulator/options.py": _FPS_TESTS,
    "preform_pipeline/simulator/estimates.py": (
        "tests/unit/simulator/test_sim_fps_settings.py",
        "tests/unit/simulator/test_engine_estimates.py",
    ),
    # Every recipe load runs every check: the recipe files without hypothesis (which refuses
    # mutmut's runner, above) and without the schema and template-file tests.
    "preform_pipeline/recipes/semantic.py": (
        "tests/unit/recipes/test_recipe_semantic.py",
        "tests/unit/recipes/test_recipe_semantic_checks.py",
        "tests/unit/recipes/test_recipe_semantic_more.py",
        "tests/unit/recipes/test_recipe_print_setting.py",
        "tests/unit/recipes/test_recipe_validate.py",
        "tests/unit/recipes/test_recipe_approval.py",
        "tests/unit/recipes/test_recipe_loader.py",
        "tests/unit/recipes/test_recipe_settings_check.py",
        "tests/unit/recipes/test_recipe_semantic_seed40.py",  # s22: an .fps scene's technology
    ),
    # s47: the rules session 47 wrote, each against the files that test it (under mutmut
    # measured by name, --mutants): a PreFormServer answer's shape and success, a value made
    # a file name, the planner's unusable outlines, the printers a settings file knows, a
    # sidecar's units, a body nested too deep for the simulator.
    "preform_pipeline/api/": ("tests/unit/api/test_api_parse_refusals.py",
                              "tests/unit/api/test_api_contract_values.py",
                              "tests/unit/api/test_api_contract_statuses.py",
                              "tests/unit/api/test_api_models.py"),
    "preform_pipeline/recipes/templates.py": ("tests/unit/recipes/test_recipe_templates.py",),
    "preform_pipeline/plan/nesting.py": ("tests/unit/plan/test_plan_raster_nest.py",),
    "preform_pipeline/commands/_printers.py": (
        "tests/unit/commands/test_cmd_validate_printers.py",),
    "preform_pipeline/hotfolder/sidecar.py": ("tests/unit/hotfolder/test_hotfolder_sidecar.py",),
    "preform_pipeline/simulator/http.py": ("tests/unit/simulator/test_sim_server_limits.py",),
    # s39: the rest of an abandoned batch and its kept models (pure bookkeeping; the
    # daemon tests of it start a daemon each)
    "preform_pipeline/hotfolder/batchrest.py": (
        "tests/unit/hotfolder/test_hotfolder_batchrest.py",),
}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def core_patterns() -> list[str]:
    patterns: list[str] = _pyproject()["tool"]["mutmut"]["only_mutate"]
    return patterns


def _is_core(module: str) -> bool:
    return any(fnmatch.fnmatch(module, p) for p in core_patterns())


def _area_tests(module: str) -> tuple[str, ...]:
    for prefix, tests in AREA_TESTS.items():
        if module.startswith(prefix):
            return tests
    return (f"tests/unit/{Path(module).parent.name}",)


def test_dirs_for(modules: list[str]) -> list[str]:
    """The area tests of each module (:data:`AREA_TESTS`, else ``tests/unit/<package>``) that
    exist, in first-seen order. An entry may name classes of a file (``file.py::TestX``), as
    pytest takes them, where the file's other classes start servers that never reach it."""
    dirs = [t for m in modules for t in _area_tests(m)]
    return list(dict.fromkeys(d for d in dirs if (REPO_ROOT / d.split("::")[0]).exists()))


def narrowed_config(text: str, modules: list[str]) -> str:
    """pyproject.toml ``text`` with [tool.mutmut]'s modules and test selection narrowed."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in ("only_mutate", "pytest_add_cli_args_test_selection"):
            values = modules if key == "only_mutate" else test_dirs_for(modules)
            out.append(f"{key} = [" + ", ".join(f'"{v}"' for v in values) + "]")
            skipping = not line.rstrip().endswith("]")
            continue
        if skipping:
            skipping = not line.strip().startswith("]")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _changed(base: str) -> list[str]:
    names = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD", "--", "preform_pipeline"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    return [n for n in names if n.endswith(".py") and _is_core(n)]


def _all_core() -> list[str]:
    found = (
        p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("preform_pipeline/**/*.py")
    )
    return sorted(m for m in found if _is_core(m) and not m.endswith("__init__.py"))


def module_mutants(module: str) -> list[str]:
    """The names mutmut gives the mutants of ``module`` (a path below the repo), sorted: made
    by mutmut's own generator, so they are the names ``mutmut run`` accepts."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    path = Path(module)
    code = (REPO_ROOT / path).read_text(encoding="utf-8")
    mutated = mutate_file_contents(module, code, None, None)
    return sorted(get_mutant_name(path, name) for name in mutated.mutant_names)


def sample_mutants(modules: list[str], size: int, seed: int) -> list[str]:
    """The first ``size`` mutant names of each module (all if it has fewer), in the order
    of a shuffle by a generator seeded with ``seed``, for each module on its own: the same
    source, mutmut version and seed give the same sample whatever other modules are named,
    and a smaller sample is part of a larger one (a run cut short is still a sample)."""
    chosen: list[str] = []
    for module in modules:
        names = module_mutants(module)
        random.Random(seed).shuffle(names)
        chosen += names[:size]
    return chosen


def _prepare(work: Path, modules: list[str]) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in _COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=_IGNORED)
        else:
            shutil.copy2(source, work / name)
    config = narrowed_config((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"), modules)
    (work / "pyproject.toml").write_text(config, encoding="utf-8")


def _scores(work: Path, only: set[str] | None = None) -> dict[str, Counter[str]]:
    listing = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=work, capture_output=True, text=True, check=True,
    ).stdout
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name or (only is not None and name not in only):
            continue
        module = name.split(".x_")[0].split(".xǁ")[0]
        by_module[module][status] += 1
    return by_module


def _with_specs(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for mutmut, naming this checkout's official specs.

    The tests run in a copy of the project under ``mutants/``, where ``../shared`` is not
    beside them: without the folder named, every contract test skips there and kills nothing
    (session 31 found simulator scores counted so). Where the specs are missing the run goes
    on, said once, rather than failing every contract test's baseline.
    """
    env = dict(environ)
    if env.get(SPEC_DIR_ENV):
        return env
    folder = spec_dir()
    if folder is None:
        print(f"official specs not found at {expected_spec_dir()}: contract tests will skip "
              f"and kill nothing (set {SPEC_DIR_ENV})")
        return env
    env[SPEC_DIR_ENV] = str(folder)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation_scope")
    parser.add_argument("modules", nargs="*",
                        help="core modules, e.g. preform_pipeline/servers/health.py")
    parser.add_argument("--changed", action="store_true",
                        help="the core modules changed since --base")
    parser.add_argument("--base", default="main")
    parser.add_argument("--all", action="store_true", help="every core module (long)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--mutants", nargs="+", default=[], metavar="GLOB",
                        help="only these mutant names, e.g. 'preform_pipeline.recipes.semantic"
                        ".x__supports*' (mutmut run's own selection)")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="only a seeded random sample of N mutants of each module")
    parser.add_argument("--seed", type=int, default=19, help="the sample's seed (default 19)")
    parser.add_argument("--print-sample", action="store_true",
                        help="print the sample's names and stop")
    args = parser.parse_args(argv)
    modules = _all_core() if args.all else _changed(args.base) if args.changed else args.modules
    if args.changed and not modules:
        print(f"no core module changed since {args.base}: nothing to mutate")
        return 0
    outside = [m for m in modules if not _is_core(m)]
    if outside or not modules:
        print(f"not core modules (see [tool.mutmut] only_mutate): {outside or 'none given'}")
        return 2
    scope = "all" if args.all else "-".join(Path(m).stem for m in modules)[:80]
    chosen = list(args.mutants)
    if args.sample is not None:
        sample = sample_mutants(modules, args.sample, args.seed)
        if args.print_sample:
            print("\n".join(sample))
            return 0
        chosen += sample
        scope = f"{scope}-sample{args.sample}-seed{args.seed}"
    work = WORK_ROOT / scope
    _prepare(work, modules)
    if args.sample is not None:
        (work / "sample.txt").write_text("\n".join(chosen) + "\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children),
         *chosen],
        cwd=work, check=False, env=_with_specs(os.environ),
    )
    if run.returncode != 0:
        return run.returncode
    only = set(chosen) if args.sample is not None else None
    for module, counts in sorted(_scores(work, only).items()):
        total = sum(counts.values())
        print(f"{module}: {counts.get('killed', 0)}/{total} killed; "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "killed"))
    print(f"survivors: cd {work} && {sys.executable} -m mutmut results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
