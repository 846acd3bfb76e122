"""The README and docs/architecture.md, tested as they read.

**Commands.** Every line of a fenced code block (plain, ``sh``, ``bash``, ``console``) that
starts with ``trainlab `` is extracted from the markdown when the tests are collected; a
trailing ``# comment`` is dropped (``# exit code N`` there sets the expected exit code,
otherwise 0). Each command runs in a subprocess (``python -m trainlab.cli``), with ``src`` and
the example plugin of ``tests/plugin_example`` (see ``test_plugin.py``) on ``PYTHONPATH``, in a
temporary working directory, and must exit with its expected code and print no traceback.
The commands are rewritten to a tiny budget first:

* every command that has ``--store`` gets ``--store <tmp>/runs.db`` (one store for all), but
  ``score --times FILE``, which scores a file instead;
* ``run``, ``bench``: ``--targets class`` unless a target source is given; step mode,
  ``--eval-every-steps 5 --max-steps 20`` (replacing any budget: ``--eval-every-steps``,
  ``--max-steps``, ``--max-runtime`` and ``--budget-scale`` are dropped first); ``--quiet``;
  ``--threads 1`` (and ``--jobs 1`` for ``bench``); ``bench``: ``--studies 2`` and, unless
  ``--ruleset self``, ``--trials 1``;
* ``targets``: ``--trials 1 --seeds 1``, the same step budget, ``--jobs 1 --threads 1``;
* the placeholder ``ID`` becomes ``1`` (the first trial);
* a file named by ``--text-file`` is written with a small generated text, and a file named by
  ``score --times`` is first written by ``trainlab score --save-times``.

Commands that read results (``score``, ``report``, ``show``, ``compare``) run after those that
make them (``run``, ``bench``, ``targets``), after a tiny ``bench`` of ``nadamw`` and ``lion`` on
``mnist1d_mlp`` in the same store, so that their "latest benchmark" holds those two.

A command that does not exist yet (``trainlab CMD --help`` fails) is skipped with that reason,
and so is a ``--by`` measure still on its way (``cpu-time``, ``flops``): both turn on by
themselves when the code lands. Any other option the parser rejects fails the test: the README
would be lying. A fast test (not ``slow``) checks only that: every documented command, as
written and as rewritten, uses options its command has, with values among their choices.

**Python.** Every ``python`` block of a file runs, in order, in one namespace (a block may use
what an earlier one defined), in a temporary working directory, with stand-ins for the names a
snippet takes from the reader's own loop: ``model`` (a small MLP), ``loader`` (a list of
``(x, y)`` batches) and ``loss_fn`` (cross-entropy). Names registered by the blocks are removed
afterwards. A block whose first line is ``# path`` with ``tests/plugin_example/path`` existing
(or a ``toml`` block ``# pyproject.toml``) must equal that file: the plugin walkthrough shows
the package ``test_plugin.py`` installs and runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "architecture.md"]
EXAMPLE = Path(__file__).with_name("plugin_example")

SHELL_LANGS = ("", "sh", "bash", "console", "shell")
PRODUCERS = ("run", "bench", "targets", "list", "demo")
STEP_BUDGET = ["--eval-every-steps", "5", "--max-steps", "20"]
PLACEHOLDERS = {"ID": "1"}
#: --by measures another engineer is adding; a command using one is skipped until it lands
PENDING_BY = ("cpu-time", "flops")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(path, text.count("\n", 0, m.start()) + 2, m.group(1).lower(), m.group(2))
        for m in FENCE.finditer(text)
    ]


@dataclass(frozen=True)
class Command:
    where: str
    argv: tuple[str, ...]  # without the leading "trainlab"
    expected: int

    @property
    def name(self) -> str:
        return self.argv[0]


def commands() -> list[Command]:
    out = []
    for path in DOCS:
        for block in blocks(path):
            if block.lang not in SHELL_LANGS:
                continue
            for i, line in enumerate(block.text.splitlines()):
                if not line.startswith("trainlab "):
                    continue
                tokens = shlex.split(line, comments=False)
                expected = 0
                if "#" in tokens:
                    comment = " ".join(tokens[tokens.index("#") :])
                    tokens = tokens[: tokens.index("#")]
                    found = re.search(r"exit code (\d+)", comment)
                    expected = int(found.group(1)) if found else 0
                where = f"{path.relative_to(ROOT)}:{block.line + i}"
                out.append(Command(where, tuple(tokens[1:]), expected))
    # producers first (document order), then the commands that read their results
    return [c for c in out if c.name in PRODUCERS] + [c for c in out if c.name not in PRODUCERS]


COMMANDS = commands()


# --------------------------------------------------------------------------------------------
# rewriting


def _drop(argv: list[str], *options: str, value: bool = True) -> list[str]:
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if name in options:
            skip = value and "=" not in token
            continue
        out.append(token)
    return out


def _has(argv: list[str], *options: str) -> bool:
    return any(t.split("=", 1)[0] in options for t in argv)


def _value(argv: list[str], option: str) -> str | None:
    for i, token in enumerate(argv):
        if token == option and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(option + "="):
            return token.split("=", 1)[1]
    return None


def rewrite(command: Command, store: Path) -> list[str]:
    """The command at a tiny budget (see the module doc)."""
    argv = [PLACEHOLDERS.get(t, t) for t in command.argv]
    name = argv[0]
    if name in ("run", "bench", "targets"):
        argv = _drop(argv, "--eval-every-steps", "--max-steps", "--max-runtime", "--budget-scale")
        argv += STEP_BUDGET + ["--threads", "1"]
    if name in ("run", "bench") and not _has(argv, "--targets"):
        argv += ["--targets", "class"]
    if name in ("run", "bench"):
        argv = _drop(argv, "--quiet", value=False) + ["--quiet"]
    if name == "bench":
        argv = _drop(argv, "--trials", "--studies", "--jobs") + ["--studies", "2", "--jobs", "1"]
        if _value(argv, "--ruleset") != "self":  # self-tuning takes no --trials
            argv += ["--trials", "1"]
    if name == "targets":
        argv = _drop(argv, "--trials", "--seeds", "--jobs") + ["--trials", "1", "--seeds", "1"]
        argv += ["--jobs", "1"]
    if name != "list" and not _has(argv, "--times"):  # score --times reads a file, not a store
        argv = _drop(argv, "--store") + ["--store", str(store)]
    return argv


# --------------------------------------------------------------------------------------------
# availability


def _exit_code(argv: list[str]) -> tuple[int, str]:
    from trainlab.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _subparser(name: str):
    import argparse

    from trainlab.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def option_errors(argv: list[str]) -> list[str]:
    """What the command's parser would reject by its syntax alone: unknown options, and values
    outside an option's choices. (Values are not otherwise checked here: the parser also checks
    that files and names exist, which only the run itself can arrange.)"""
    parser = _subparser(argv[0])
    if parser is None:
        return [f"no command {argv[0]!r}"]
    options = {s: a for a in parser._actions for s in a.option_strings}
    errors = []
    for i, token in enumerate(argv[1:], 1):
        if not token.startswith("-") or re.fullmatch(r"-[\d.]+(e-?\d+)?", token):
            continue
        name, _, inline = token.partition("=")
        action = options.get(name)
        if action is None:
            errors.append(f"unknown option {name}")
            continue
        value = inline or (argv[i + 1] if action.nargs != 0 and i + 1 < len(argv) else None)
        if action.choices is not None and value is not None and value not in action.choices:
            errors.append(f"{name} {value}: not one of {sorted(action.choices)}")
    return errors


def skip_reason(argv: list[str]) -> str | None:
    """Why a documented command cannot run yet, or None. Only what is known to be on its way
    is skipped; any other parse error is the README's (the test fails on it)."""
    name = argv[0]
    code, _ = _exit_code([name, "--help"])
    if code != 0:
        return f"`trainlab {name}` does not exist yet (`trainlab {name} --help` fails)"
    by = _value(argv, "--by")
    if by in PENDING_BY and option_errors([name, "--by", by]):
        return f"`trainlab {name} --by {by}` is not available yet (not among --by's choices)"
    return None


# --------------------------------------------------------------------------------------------
# the world the commands run in


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(site)])
    env["OMP_NUM_THREADS"] = "1"
    return env


def trainlab(world, argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainlab.cli", *argv],
        cwd=world["cwd"],
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from test_plugin import make_installed

    base = tmp_path_factory.mktemp("docs")
    site = make_installed(base / "site")
    cwd = base / "cwd"
    cwd.mkdir()
    return {"cwd": cwd, "env": _env(site), "store": cwd / "runs.db"}


@pytest.fixture(scope="module")
def results(world):
    """The latest benchmark of the store, for the commands that read results (a seed of its
    own, so that it is a new benchmark even after the documented ones)."""
    w = world
    seed = ["bench", "-w", "mnist1d_mlp", "-a", "nadamw,lion", "--trials", "1", "--studies", "2",
            "--seed", "4321", *STEP_BUDGET, "--targets", "class", "--jobs", "1", "--threads", "1",
            "--quiet", "--store", str(w["store"])]  # fmt: skip
    out = trainlab(w, seed)
    assert out.returncode == 0, out.stdout + out.stderr
    return w


def _prepare_files(world, argv: list[str]) -> None:
    text_file = _value(argv, "--text-file")
    if text_file and not (world["cwd"] / text_file).exists():
        words = "the quick brown fox jumps over the lazy dog while ( nested [ brackets ] ) "
        (world["cwd"] / text_file).write_text("".join(f"{i % 7} {words}\n" for i in range(600)))
    times = _value(argv, "--times")
    if argv[0] == "score" and times and not (world["cwd"] / times).exists():
        out = trainlab(world, ["score", "--save-times", times, "--store", str(world["store"])])
        assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------------------------
# tests: commands


def test_commands_found():
    names = {c.name for c in COMMANDS}
    assert {"run", "bench", "score", "report", "show", "list"} <= names
    assert all(not any(t == "#" for t in c.argv) for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.where} {' '.join(c.argv)}")
def test_documented_command_parses(command, tmp_path):
    """Fast: every documented command, as written and as rewritten, uses only options its
    command has, with values among their choices."""
    for argv in (list(command.argv), rewrite(command, tmp_path / "runs.db")):
        reason = skip_reason(argv)
        if reason:
            pytest.skip(reason)
        assert option_errors(argv) == [], f"{command.where}: trainlab {' '.join(argv)}"


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.where} {' '.join(c.argv)}")
def test_documented_command_runs(command, world, request):
    if command.name not in PRODUCERS:
        request.getfixturevalue("results")
    argv = rewrite(command, world["store"])
    reason = skip_reason(argv)
    if reason:
        pytest.skip(reason)
    if command.name == "demo":
        pytest.skip("trainlab demo is the 7-minute demo (make demo); it takes no budget options")
    _prepare_files(world, argv)
    out = trainlab(world, argv)
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    assert out.returncode == command.expected, (
        f"{command.where}: trainlab {' '.join(argv)}\n{out.stdout}\n{out.stderr}"
    )


# --------------------------------------------------------------------------------------------
# tests: python blocks and the plugin files they show


def _file_of(block: Block) -> Path | None:
    first = block.text.splitlines()[0] if block.text.strip() else ""
    match = re.fullmatch(r"# ([\w./-]+\.(?:py|toml))", first.strip())
    if match and block.lang in ("python", "toml") and (EXAMPLE / match.group(1)).is_file():
        return EXAMPLE / match.group(1)
    return None


def test_plugin_blocks_match_the_example_package():
    shown = {}
    for path in DOCS:
        for block in blocks(path):
            example = _file_of(block)
            if example is not None:
                assert block.text == example.read_text(), (
                    f"{path.name}:{block.line} differs from {example.relative_to(ROOT)}"
                )
                shown[example.name] = True
    assert {"pyproject.toml", "algorithm.py", "workload.py"} <= set(shown)


def test_docs_refer_to_nothing_outside_the_repository():
    """Links and paths stay inside the repository (no ``../``), and every relative markdown
    link resolves."""
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        assert "../" not in text, path
        for target in re.findall(r"\]\(([^)#:]+)\)", text):
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


@pytest.fixture
def clean_registry():
    """Snapshot the registry (after loading the built-in names) and restore it afterwards."""
    from trainlab import registry
    from trainlab.algorithms import recipe

    registry.load_all()
    tables = [registry._WORKLOADS, registry._ALGORITHMS, recipe.OPTIMIZERS, recipe.SCHEDULES]
    saved = [dict(t) for t in tables]
    # the docs define the example plugin's names again: forget them if another test of this
    # session imported the plugin itself
    for table in tables[:2]:
        for name in [n for n in table if n.startswith("plugin_")]:
            del table[name]
    resolvers = list(registry._RESOLVERS)
    yield
    for table, copy in zip(tables, saved, strict=True):
        table.clear()
        table.update(copy)
    registry._RESOLVERS[:] = resolvers


def _stand_ins() -> dict:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    loader = [(torch.randn(16, 10), torch.randint(3, (16,))) for _ in range(20)]
    return {"__name__": "__docs__", "model": model, "loader": loader,
            "loss_fn": nn.CrossEntropyLoss()}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_run(path, tmp_path, monkeypatch, clean_registry):
    python = [b for b in blocks(path) if b.lang == "python"]
    assert python, f"{path.name} has no python blocks"
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    namespace = _stand_ins()
    try:
        for block in python:
            code = compile(block.text, f"{path.name}:{block.line}", "exec")
            with contextlib.redirect_stdout(io.StringIO()):
                exec(code, namespace)  # noqa: S102
    finally:
        torch.set_num_threads(threads)
