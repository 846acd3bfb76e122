"""The package's shape: a module per command with the same four names, small modules, rich
only in render.py (so output for machines never depends on it)."""

import importlib
from pathlib import Path

import pytest

import trainlab.cli as cli

PACKAGE = Path(cli.__file__).parent


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_each_command_is_a_module(name):
    module = importlib.import_module(f"trainlab.cli.{name.replace('-', '_')}")
    assert module.NAME == name and module.HELP
    assert callable(module.add_arguments) and callable(module.run)


def test_modules_are_small_and_rich_stays_in_render():
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 300, path.name
        if path.name != "render.py":
            assert "from rich" not in text and "import rich" not in text, path.name


def test_demo_names_are_still_importable_from_the_package():
    from trainlab.cli import DEMO_WORKLOADS

    assert "mnist1d_mlp" in DEMO_WORKLOADS
