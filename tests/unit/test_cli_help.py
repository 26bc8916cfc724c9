"""``--help`` of every command and sub-command: a sentence saying what it does, and every
option described (session 35's trial read them all as a newcomer would)."""

from __future__ import annotations

import argparse
import importlib
import io
from collections.abc import Iterator

import pytest

from preform_pipeline import cli


def _parsers() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command's parser and its sub-commands', with the words that reach each."""

    def walk(path: tuple[str, ...], parser: argparse.ArgumentParser
             ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk((*path, name), child)

    top = argparse.ArgumentParser(prog="preform-pipeline")
    sub = top.add_subparsers()
    for module in cli.COMMAND_MODULES:
        command = importlib.import_module(module)
        parser = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(parser)
        yield from walk((command.NAME,), parser)


PARSERS = dict(_parsers())


@pytest.mark.parametrize("words", sorted(PARSERS), ids=" ".join)
class TestEveryHelp:
    """Each (sub-)command's help, as a user gets it with ``--help``."""

    def test_it_says_what_the_command_does(
        self, words: tuple[str, ...]
    ) -> None:
        out = io.StringIO()
        assert cli.run([*words, "--help"], out, io.StringIO()) == 0
        text = out.getvalue()  # argparse's help goes to the stdout the command line is given
        # A paragraph between the usage lines and the first section ("options:").
        blocks = text.split("\n\n")
        assert blocks[0].startswith("usage: ")
        first = blocks[1].splitlines()[0] if len(blocks) > 1 else ""
        assert first.strip() and not first.endswith(":"), (
            f"`{' '.join(words)} --help` says nothing about what it does:\n{text}")

    def test_every_option_is_described(self, words: tuple[str, ...]) -> None:
        parser = PARSERS[words]
        # A sub-command's own help is its choice's (listed under ACTION), not the action's.
        bare = [a.option_strings or [a.dest] for a in parser._actions
                if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
                and not a.help]
        assert bare == []


class TestWhatTheHelpSays:
    """Defaults the help states are the ones the command applies."""

    def test_run_output_names_every_source_of_its_default(self) -> None:
        # docs/running.md: --output, else the settings' output_root, else outputs.root.
        (action,) = [a for a in PARSERS[("run",)]._actions if "--output" in a.option_strings]
        assert action.help is not None
        assert "output_root" in action.help and "outputs.root" in action.help
        assert action.help.index("output_root") < action.help.index("outputs.root")
