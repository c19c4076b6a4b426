"""The README's commands are the ones CI runs and they name files that exist; its options table is
`artistyle --help`'s."""

from __future__ import annotations

import re

from artistyle.cli.options import build_parser

from .conftest import REPO


def _commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    return re.findall(r"^(python3 -m venv .+)$", readme, flags=re.MULTILINE)


def test_ci_runs_the_readme_test_command() -> None:
    commands = _commands()
    assert len(commands) >= 2
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == commands[1]


def test_readme_sample_files_exist() -> None:
    first = _commands()[0]
    for path in re.findall(r"src/artistyle/samples/\S+\.jpg", first):
        assert (REPO / path).is_file(), path


def _table_options() -> list[str]:
    """The options in the first column of the README's table of painting options (under "Command line")."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("\n## Command line\n"):]
    table = re.search(r"^\| option \| default \| meaning \|\n\| --- [^\n]*\n((?:\|[^\n]*\n)+)", section, re.MULTILINE)
    assert table, "no options table under Command line"
    options = []
    for row in table.group(1).splitlines():
        first = re.split(r"(?<!\\)\|", row)[1]  # cells are split at | but not at an escaped \|
        options += re.findall(r"(?<![\w-])--?[a-z][\w-]*", first)
    return options


def test_readme_options_table_is_the_parsers() -> None:
    # Every option of the painting command (generated from StyleConfig, plus its own) is in the table, and
    # every option in the table exists: a setting added or renamed shows up here until the README says so.
    parser = {option for action in build_parser()._actions for option in action.option_strings}
    table = _table_options()
    assert len(table) == len(set(table)), "an option is in the table twice"
    assert sorted(parser - set(table)) == [], "options missing from the README's table"
    assert sorted(set(table) - parser) == [], "options in the README's table that artistyle does not have"
