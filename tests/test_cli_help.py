"""Every `studio` verb and option says what it is for in `--help`."""

from __future__ import annotations

import argparse

from studio.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str = "studio"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{path} {name} has no help line"
                yield from _parsers(sub, f"{path} {name}")


def test_every_verb_and_option_has_a_help_line():
    missing = [
        f"{path} {'/'.join(a.option_strings) or a.dest}"
        for path, parser in _parsers(build_parser())
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
        and not (a.help and a.help.strip())
    ]
    assert not missing, "options without help:\n" + "\n".join(missing)


def test_the_walk_covers_the_nested_verbs():
    paths = [path for path, _ in _parsers(build_parser())]
    assert "studio analyze zoom" in paths and "studio train" in paths and len(paths) > 15
