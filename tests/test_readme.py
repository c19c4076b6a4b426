"""The README's commands are the ones CI runs and they name files that exist."""

from __future__ import annotations

import re

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
