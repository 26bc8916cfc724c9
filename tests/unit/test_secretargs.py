"""A secret typed on a command line is refused, naming the option and never repeating the value."""

from __future__ import annotations

import argparse
import importlib
import io
import string
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from preform_pipeline import cli
from preform_pipeline.secretargs import (
    command_letters,
    foreign_letter_in,
    refuse_secret_option,
    secret_option_in,
)
from preform_pipeline.simulator import cli as simulator_cli
from preform_pipeline.simulator.cloud import cli as cloud_cli
from tests.command_line import TIMEOUT_S, InProcess, in_a_process, user_environment

SECRET = "hunter2-s3cr3t-value"


class TestThePipelinesCommandLine:
    """``preform-pipeline`` names the option and where the secret goes instead."""

    def test_a_client_secret_after_verify_is_refused_without_its_value(
        self, tmp_path: Path
    ) -> None:
        done = in_a_process(tmp_path, "verify", "--client-secret", SECRET)

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith(
            "error: --client-secret: a secret is never taken on the command line")
        assert "$PREFORM_PIPELINE_CLIENT_SECRET_FILE" in done.stderr

    def test_any_spelling_with_its_value_joined_is_refused(
        self, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        typed = InProcess(capfd, monkeypatch)
        done = typed(tmp_path, "run", "r.yaml", "m.stl", f"--Client_Secret={SECRET}")

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith("error: --client-secret: ")


class TestTheDashboardSimulatorsCommandLine:
    """The simulator took ``--client-secret`` for ``--client-secret-file`` (argparse matches
    prefixes) and named the secret as a file it could not read."""

    def test_a_client_secret_is_refused_before_anything_starts(self, tmp_path: Path) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "preform_pipeline.simulator.cloud", "--port", "0",
             "--fleet-dir", str(tmp_path / "fleet"), "--client-secret", SECRET],
            cwd=tmp_path, env=user_environment(), capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False)

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stdout == ""  # no start-up line: nothing was served
        assert done.stderr.startswith("error: --client-secret: a secret is never taken")
        assert "--client-secret-file FILE" in done.stderr
        assert not (tmp_path / "fleet").exists()


class TestWhatCountsAsASecretOption:
    @pytest.mark.parametrize("argv", [
        ["--password", "x"], ["--token=x"], ["serve", "s.yaml", "--API_KEY", "x"],
    ])
    def test_options_that_give_a_secret(self, argv: list[str]) -> None:
        assert secret_option_in(argv) is not None

    @pytest.mark.parametrize(("argv", "named"), [
        (["--cloud-api-key", "x"], "--cloud-api-key"),
        (["--hash-secret", "--token-lifetime", "60", "--token", "x"], "--token"),
    ])
    def test_the_option_named_is_the_one_that_gives_it(self, argv: list[str], named: str
                                                        ) -> None:
        assert secret_option_in(argv) == named

    @pytest.mark.parametrize("argv", [
        ["serve", "--hash-secret"], ["--client-secret-file", "f"], ["run", "r", "--", "--token"],
    ])
    def test_other_options_and_names_after_a_double_dash(self, argv: list[str]) -> None:
        assert secret_option_in(argv) is None


class TestAbbreviationsAndOtherNames:
    """argparse takes an option's abbreviation (``--client-sec`` was the simulator's
    ``--client-secret-file``, naming the secret as a file) and echoes an unknown option with
    its value (``--api-token VALUE``): both are refused before argparse reads the line."""

    @pytest.mark.parametrize("argv", [
        ["verify", "--client-sec", SECRET], ["verify", f"--client-sec={SECRET}"],
        ["serve", "--pass", SECRET], ["run", "r.yaml", "m.stl", "--api-token", SECRET],
        ["verify", f"--Secret_Key={SECRET}"], ["serve", "--db-password", SECRET],
        # Session 42's mutation run: an API key spelt over several words, and a secret
        # option after one of the project's own (the look went on past it).
        ["run", "r.yaml", "--cloud-api-key", SECRET], ["serve", "--hash-secret", "--token", SECRET],
        # Session 43: one dash, as Go's and Java's tools spell a long option (TestASingleDash).
        ["verify", "-password", SECRET], ["verify", f"-client-secret={SECRET}"],
        ["serve", "-Client_Secret", SECRET], ["run", "r.yaml", "m.stl", f"-pass={SECRET}"],
        ["verify", "-api-token", SECRET],
    ])
    def test_the_pipelines_command_line_refuses_them(
        self, argv: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        done = InProcess(capfd, monkeypatch)(tmp_path, *argv)

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith(f"error: {secret_option_in(argv)}: a secret is never")

    @pytest.mark.parametrize("argv", [
        ["--client-sec", SECRET], [f"--client-secre={SECRET}"], ["--api-token", SECRET],
    ])
    def test_the_dashboard_simulator_refuses_them(self, argv: list[str]) -> None:
        out, err = io.StringIO(), io.StringIO()

        assert cloud_cli.run(["--port", "0", *argv], out, err, environ={}) == 2
        assert SECRET not in out.getvalue() + err.getvalue()
        assert err.getvalue().startswith("error: --")
        assert "--client-secret-file FILE" in err.getvalue()

    def test_the_preformserver_simulator_refuses_them(self) -> None:
        # It takes no secret; argparse echoed "unrecognized arguments: --client-secret VALUE".
        for argv in (["--client-secret", SECRET], [f"--token={SECRET}"]):
            out, err = io.StringIO(), io.StringIO()
            assert simulator_cli.run(["--port", "0", *argv], out, err) == 2, argv
            assert SECRET not in out.getvalue() + err.getvalue()
            assert "takes no secret" in err.getvalue()


class TestASingleDash:
    """Go's and Java's tools spell a long option with one dash: argparse echoed
    ``-password VALUE`` and ``-client-secret=VALUE`` as unrecognized, the value with them."""

    @pytest.mark.parametrize(("argv", "named"), [
        (["verify", "-Client_Secret", SECRET], "-client-secret"), ([f"-pass={SECRET}"], "-pass"),
    ])
    def test_the_option_is_named_with_the_one_dash_typed(self, argv: list[str], named: str
                                                          ) -> None:
        # The pipeline's refusals of one dash are among TestAbbreviationsAndOtherNames'.
        assert secret_option_in(argv) == named

    def test_both_simulators_refuse_it(self) -> None:
        for run, argv in ((cloud_cli.run, ["-client-secret", SECRET]),
                          (simulator_cli.run, [f"-token={SECRET}"])):
            out, err = io.StringIO(), io.StringIO()
            kwargs = {"environ": {}} if run is cloud_cli.run else {}
            assert run(["--port", "0", *argv], out, err, **kwargs) == 2, argv
            assert SECRET not in out.getvalue() + err.getvalue()
            assert err.getvalue().startswith(f"error: {argv[0].partition('=')[0]}: a secret")

    @pytest.mark.parametrize("argv", [
        ["run", "r.yaml", "m.stl", "-v"], ["-h"], ["--port", "-p", "8080"], ["-"],
        ["--offset", "-5"], ["-x", "secret.txt"],
    ])
    def test_a_single_letter_a_number_and_standard_input_are_left_to_argparse(
        self, argv: list[str]
    ) -> None:
        assert secret_option_in(argv) is None


class TestASingleLetter:
    """Session 44: argparse echoed an unknown single-letter option with what followed it
    ("unrecognized arguments: -p hunter2"); no command has a single-letter option that takes
    a value, so any letter that is none of a program's own is refused, nothing after it said."""

    @pytest.mark.parametrize("argv", [
        ["verify", "-p", SECRET], ["verify", f"-p{SECRET}"], ["serve", "s.yaml", f"-P={SECRET}"],
        ["jobs", "list", "-u", f"olivia:{SECRET}"], ["run", "r.yaml", "m.stl", "-v", "-k", SECRET],
        # s44-mutants: quoted as one word that is no long option's value (only the word right
        # after one without its "=value" is): argparse echoed each ("invalid choice").
        [f"-p {SECRET}"], ["jobs", "list", f"-p {SECRET}"],
        ["jobs", "reject", "7", "--reason=late", f"-p {SECRET}"],
    ])
    def test_the_pipelines_command_line_refuses_it_without_what_followed(
        self, argv: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        done = InProcess(capfd, monkeypatch)(tmp_path, *argv)

        letter = next(w[:2] for w in argv if w.startswith("-") and w[1:2].isalpha()
                      and w[1] != "v")
        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith(
            f"error: {letter}: no option of this command starts with {letter} ")
        assert "$PREFORM_PIPELINE_CLIENT_SECRET_FILE" in done.stderr

    @pytest.mark.parametrize(("argv", "shown", "named"), [
        (["run", "r.yaml", "m.stl", f"-vp{SECRET}"], "-vp", "-p"),
        (["run", "r.yaml", "m.stl", f"-v={SECRET}"], "-v=", "-v="),
        (["jobs", f"-hp{SECRET}"], "-hp", "-p"),
    ])
    def test_a_letter_after_an_own_one_is_refused_too(
        self, argv: list[str], shown: str, named: str, tmp_path: Path,
        capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Review (rv44-loose): argparse reads -vphunter2 as -v, and echoed the rest
        # ("argument -v/--verbose: ignored explicit argument 'phunter2'"). The letter that is
        # none of the command's is named, not the cluster (review, rv45-loose).
        done = InProcess(capfd, monkeypatch)(tmp_path, *argv)

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith(
            f"error: {shown}: no option of this command starts with {named} ")

    def test_both_simulators_refuse_it(self) -> None:
        for run, argv in ((cloud_cli.run, ["-p", SECRET]), (simulator_cli.run, [f"-t{SECRET}"])):
            out, err = io.StringIO(), io.StringIO()
            kwargs = {"environ": {}} if run is cloud_cli.run else {}
            assert run(["--port", "0", *argv], out, err, **kwargs) == 2, argv
            assert SECRET not in out.getvalue() + err.getvalue()
            assert err.getvalue().startswith(f"error: {argv[0][:2]}: no option"), argv

    @pytest.mark.parametrize("run", [simulator_cli.run, cloud_cli.run],
                             ids=["preformserver", "dashboard"])
    def test_a_simulator_shows_its_help_for_h_and_refuses_every_other_letter(
        self, run: Callable[..., int], capsys: pytest.CaptureFixture[str]
    ) -> None:
        # s44-mutants: the simulators rely on the rule's own default letters ("h").
        assert run(["-h"], io.StringIO(), io.StringIO()) == 0
        assert capsys.readouterr().out.startswith("usage: ")
        for letter in sorted(set(string.ascii_letters) - {"h"}):
            err = io.StringIO()
            assert run(["--port", "0", f"-{letter}"], io.StringIO(), err) == 2, letter
            assert err.getvalue().startswith(f"error: -{letter}: no option"), letter

    @pytest.mark.parametrize("argv", [
        ["run", "r.yaml", "m.stl", "-v"], ["-h"], ["run", "-hv"], ["--offset", "-5"], ["-"],
        ["run", "r.yaml", "--", "-p.stl"], ["run", "r.yaml", "m.stl", "-vhv"],
        # argparse takes a word holding a space as an option's value (review, rv44-loose).
        ["jobs", "reject", "7", "--reason", "-crown 3 lifts off the raft"],
    ])
    def test_the_commands_own_letters_numbers_and_names_pass(self, argv: list[str]) -> None:
        assert foreign_letter_in(argv, _letters(argv)) is None

    def test_a_file_named_like_one_is_left_to_the_usage_error_that_names_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        argv = ["run", "r.yaml", "-rf.stl"]
        assert foreign_letter_in(argv, _letters(argv)) == "-r"
        (tmp_path / "-rf.stl").write_bytes(b"solid x\nendsolid x\n")
        assert foreign_letter_in(argv, _letters(argv)) is None

    def test_each_simulators_letters_are_all_its_parser_has(self) -> None:
        # The simulators rely on the rule's default letters: a new single-letter option
        # belongs there too, or it is refused. (The pipeline's are read from its parsers.)
        for parser in (simulator_cli.build_parser(), cloud_cli.build_parser()):
            own = {o[1] for o in _options(parser) if len(o) == 2}
            assert own == {"h"}, parser.prog


class TestTheLettersOfACommand:
    """Session 45: a single letter is allowed only to the command that owns it. With the
    program's letters allowed everywhere, ``jobs list -v hunter2`` was echoed by argparse
    ("unrecognized arguments: -v hunter2"): ``-v`` is run's alone."""

    @pytest.mark.parametrize("argv", [
        ["jobs", "list", "-v", SECRET], ["jobs", "list", f"-v{SECRET}"],
        ["validate", "-v", SECRET], ["jobs", "--store", "j.sqlite3", "list", "-v", SECRET],
    ])
    def test_a_secret_after_another_commands_letter_is_never_echoed(
        self, argv: list[str], tmp_path: Path
    ) -> None:
        done = in_a_process(tmp_path, *argv)

        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        assert done.stderr.startswith("error: -v: no option of this command starts with -v ")
        assert not list(tmp_path.iterdir())  # refused before anything was opened

    def test_a_commands_own_letter_still_works(
        self, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # run's -v passes the check and argparse: the run then fails on its missing recipe.
        done = InProcess(capfd, monkeypatch)(tmp_path, "run", "absent.yaml", "m.stl", "-v")

        assert done.returncode not in (0, 2), done.stderr
        assert "no option of this command" not in done.stderr
        assert "absent.yaml" in done.stderr

    @pytest.mark.parametrize(("argv", "letters"), [
        (["run", "r.yaml"], "hv"), (["jobs", "list"], "h"), (["jobs", "--store", "x", "list"],
                                                              "h"),
        (["validate"], "h"), (["runn", "-v"], "h"), ([], "h"), (["--", "run"], "h"),
    ])
    def test_they_are_read_from_the_parser_of_the_command_typed(
        self, argv: list[str], letters: str
    ) -> None:
        assert command_letters(_commands_parser(), argv) == letters

    def test_an_option_of_one_dash_and_a_name_gives_no_letter(self) -> None:
        # Go's and Java's spelling (-name): argparse takes it, and its first letter is no
        # option of its own, so it is not let through as one (s45-mutants).
        parser = argparse.ArgumentParser()
        parser.add_argument("-name")
        parser.add_argument("--verbose", "-v", action="store_true")

        assert command_letters(parser, []) == "hv"

    def test_a_flag_before_the_command_word_is_passed_over(self) -> None:
        parser = argparse.ArgumentParser()
        parser.add_argument("--quiet", action="store_true")
        commands = parser.add_subparsers(dest="command")
        commands.add_parser("run").add_argument("-v", action="store_true")

        assert command_letters(parser, ["--quiet", "run", "-v"]) == "hv"


def _command_lines() -> list[list[str]]:
    """Every command and subcommand of ``preform-pipeline``, as typed (``[]``: none)."""
    lines: list[list[str]] = [[]]
    for name in cli.COMMAND_MODULES:
        command = importlib.import_module(name)
        parser = argparse.ArgumentParser()
        command.add_arguments(parser)
        lines.append([command.NAME])
        lines.extend([command.NAME, sub] for action in parser._actions
                     if isinstance(action, argparse._SubParsersAction) for sub in action.choices)
    return lines


class TestHelpBesideAnotherCommandsLetter:
    """Review (rv45-loose): with ``-v`` no longer every command's, ``jobs -h -v`` (help until
    session 45) and ``jobs -hv`` (argparse's "ignored explicit argument 'v'") are refused;
    every command still shows its help for ``-h`` and ``-hh``, and refuses the others naming
    the letter that is not its own, as run shows its help for all of them."""

    @pytest.mark.parametrize("line", _command_lines(),
                             ids=lambda line: " ".join(line) or "no-command")
    def test_h_shows_help_and_a_foreign_letter_beside_it_is_named(
        self, line: list[str]
    ) -> None:
        own_v = line == ["run"]
        for form in (["-h"], ["-hh"], ["-h", "-v"], ["-v", "-h"], ["-hv"], ["--help", "-v"]):
            out, err = io.StringIO(), io.StringIO()
            status = cli.run([*line, *form], out, err)
            if form in (["-h"], ["-hh"]) or own_v:
                assert (status, err.getvalue()) == (0, ""), form
                assert out.getvalue().startswith(
                    f"usage: {' '.join(['preform-pipeline', *line])} "), form
            else:
                shown = "-hv" if form == ["-hv"] else "-v"
                assert (status, out.getvalue()) == (2, ""), form
                assert err.getvalue().startswith(
                    f"error: {shown}: no option of this command starts with -v (its options "
                    "are spelt with two dashes: see --help)"), form


class TestTheRefusalLine:
    def test_a_hidden_character_in_the_option_is_shown_escaped(self) -> None:
        # The simulators write to their stderr as it is; the option is what was typed.
        out, err = io.StringIO(), io.StringIO()

        assert simulator_cli.run(["--port", "0", "--api\x1b[2J-token", SECRET], out, err) == 2
        assert "\x1b" not in err.getvalue()
        assert err.getvalue().startswith("error: --api\\x1b[2j-token: a secret is never")

    def test_a_line_without_a_secret_is_let_through_and_nothing_is_said(self) -> None:
        err = io.StringIO()

        assert refuse_secret_option(["verify", "--client-secret-file", "f"], err,
                                    instead="give it in a file") is False
        assert err.getvalue() == ""

    def test_a_closed_stderr_still_refuses(self) -> None:
        err = io.StringIO()
        err.close()

        assert simulator_cli.run(["--port", "0", "--token", SECRET], io.StringIO(), err) == 2


class TestNoFalsePositives:
    @pytest.mark.parametrize("argv", [
        ["verify", "--client-secret-file", "f"], ["x", "--secret-file", "f"],
        ["x", "--password-file=f"], ["run", "r.yaml", "secret.stl"],
        ["run", "recipes/token/r.yaml", "--recipe=token.yaml"], ["serve", "--hash-secret"],
        ["--token-lifetime", "60"], ["--client-id", "c"],
        # Session 43's mutation run: a word with no dash before it is a value or a name
        # however its parts read (a model's file name here), never an option.
        ["run", "r.yaml", "implant-token-holder.stl"], ["x", "--name", "lab-client-secret"],
    ])
    def test_options_that_name_where_a_secret_is_or_take_none(self, argv: list[str]) -> None:
        assert secret_option_in(argv) is None

    def test_no_option_of_the_projects_command_lines_is_refused(self) -> None:
        # A new option whose name holds "secret" or "token" and takes no secret belongs in
        # OWN_OPTIONS (or ends in -file); this says which.
        options = {*_options(_commands_parser()), *_options(simulator_cli.build_parser()),
                   *_options(cloud_cli.build_parser())}
        assert len(options) > 50
        assert [o for o in sorted(options) if secret_option_in([o, "x"]) is not None] == []


def _commands_parser() -> argparse.ArgumentParser:
    """A parser holding every command of ``preform-pipeline``, each with its options."""
    top = argparse.ArgumentParser()
    sub = top.add_subparsers()
    for name in cli.COMMAND_MODULES:
        command = importlib.import_module(name)
        command.add_arguments(sub.add_parser(command.NAME))
    return top


def _letters(argv: list[str]) -> str:
    """The single letters ``preform-pipeline`` allows the command ``argv`` names."""
    return command_letters(_commands_parser(), argv)


def _options(parser: argparse.ArgumentParser) -> Iterator[str]:
    """Every option of ``parser`` and of its subcommands' parsers, short ones too."""
    for action in parser._actions:
        yield from action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _options(child)
