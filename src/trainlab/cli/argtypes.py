"""Argument types: each checks a value as argparse reads it, so a bad value is reported with
the option's name before a command does anything. They raise
:class:`argparse.ArgumentTypeError` (``BadValue``), which argparse turns into
``argument --NAME: MESSAGE`` (and ``common.Parser`` into ``--NAME: MESSAGE``)."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from trainlab.errors import TrainlabError

SEED_MAX = 2**31 - 1
BadValue = argparse.ArgumentTypeError


def integer(low: int, high: int, what: str = "an integer") -> Callable[[str], int]:
    """An int in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise BadValue(f"expected {what}, got {text!r}") from None
        if value < low:
            raise BadValue(f"must be >= {low}, got {value}")
        if value > high:
            raise BadValue(f"must be <= {high}, got {value}")
        return value

    parse.__name__ = what
    return parse


def real(low: float, high: float = math.inf, low_open: bool = True) -> Callable[[str], float]:
    """A finite float above ``low`` (or at it, ``low_open=False``) and at most ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise BadValue(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise BadValue(f"must be a finite number, got {text!r}")
        if value < low or (low_open and value == low) or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            if math.isfinite(high):
                bound += f" and <= {high:g}"
            raise BadValue(f"must be {bound}, got {text}")
        return value

    return parse


seed = integer(0, SEED_MAX, "a seed")
positive = integer(1, 10**9, "a positive integer")
trial_id = integer(1, 2**63 - 1, "an id")
jobs = integer(1, 1024, "a number of jobs")
threads = integer(1, 1024, "a number of threads")
#: processes of a data-parallel trial (the machine's limit is checked by the command)
nproc = integer(1, 1024, "a number of processes")
counts = integer(1, 1000, "a count")


def executor(text: str) -> str:
    """``local`` or ``ray`` (installed: a benchmark is planned in the store before it runs)."""
    import importlib.util

    if text not in ("local", "ray"):
        raise BadValue(f"expected local or ray, got {text!r}")
    if text == "ray" and importlib.util.find_spec("ray") is None:
        raise BadValue("ray needs the ray package (pip install 'trainlab[ray]')")
    return text


def eval_every(text: str) -> int | str:
    """``N`` (a positive int) or ``auto``."""
    if text.strip() == "auto":
        return "auto"
    try:
        return positive(text)
    except BadValue:
        raise BadValue(f"takes N or auto (N >= 1), got {text!r}") from None


def targets_source(text: str) -> str:
    """``tuned``, ``class`` or a readable, well-formed targets file."""
    from trainlab.workloads.targets import check_source

    try:
        return check_source(text)
    except TrainlabError as exc:
        raise BadValue(str(exc).removeprefix("--targets ")) from None


DEVICE = re.compile(r"(cpu|auto|mps|cuda(:\d{1,3})?)\Z")


def device(text: str) -> str:
    """cpu, cuda, cuda:N, mps or auto (availability is checked when torch is set up)."""
    if not DEVICE.match(text.strip()):
        raise BadValue(f"expected cpu, cuda, cuda:N, mps or auto, got {text!r}")
    return text.strip()


def readable_file(text: str) -> Path:
    """An existing, readable regular file."""
    path = Path(text)
    if not text.strip():
        raise BadValue("expected a file name, got an empty one")
    try:
        if path.is_dir():
            raise BadValue(f"{text} is a directory, not a file")
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise BadValue(f"cannot read {text}: {exc.strerror or exc}") from None
    return path


def writable_file(text: str) -> Path:
    """A file name that can be created or replaced: not a directory, in an existing directory."""
    path = Path(text)
    if not text.strip():
        raise BadValue("expected a file name, got an empty one")
    if path.is_dir():
        raise BadValue(f"{text} is a directory, not a file")
    parent = path.parent
    if not parent.is_dir():
        raise BadValue(f"no directory {parent} to write {path.name} in")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadValue(f"cannot write {text}: permission denied")
    return path


def output_dir(text: str) -> Path:
    """A directory to create or fill: not an existing file."""
    path = Path(text)
    if not text.strip():
        raise BadValue("expected a directory name, got an empty one")
    if path.exists() and not path.is_dir():
        raise BadValue(f"{text} exists and is not a directory")
    return path


SQLITE_MAGIC = b"SQLite format 3\x00"


STORE_URL_SCHEMES = ("postgresql://", "postgres://")


def store_path(text: str) -> Path | str:
    """A results store to open or create: a ``postgresql://`` URL (checked when opened), or a
    file path that is not a directory and, if it exists, is a SQLite file."""
    if "://" in text:
        if not text.startswith(STORE_URL_SCHEMES):
            raise BadValue(f"unknown store URL scheme {text.split('://')[0]}://; use a file "
                           "path or postgresql://USER@HOST:PORT/DB")  # fmt: skip
        return text
    path = Path(text)
    if not text.strip():
        raise BadValue("expected a file name, got an empty one")
    if path.is_dir():
        raise BadValue(f"{text} is a directory, not a results store")
    if path.exists():
        try:
            with open(path, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise BadValue(f"cannot read {text}: {exc.strerror or exc}") from None
        if head != SQLITE_MAGIC:
            what = "an empty file" if not head else "not a SQLite file"
            raise BadValue(f"{text} is not a trainlab results store ({what})")
    elif path.parent.exists() and not path.parent.is_dir():
        raise BadValue(f"{path.parent} is not a directory")
    return path


def existing_store(text: str) -> Path | str:
    """A results store that exists (read-only commands never create one)."""
    path = store_path(text)
    if isinstance(path, str):
        return path
    if not path.exists():
        raise BadValue(f"no results store at {text} (run `trainlab run` or `trainlab bench`)")
    if path.stat().st_size == 0:
        raise BadValue(f"{text} is an empty file, not a results store")
    return path


@cache
def _workload(name: str) -> Any:
    from trainlab.registry import get_workload

    return get_workload(name)


def workload_name(text: str) -> str:
    """A registered workload, optionally ``name:variant`` with a variant it has."""
    from trainlab.registry import workload_names

    name, _, variant = text.strip().partition(":")
    if name not in workload_names():
        raise BadValue(f"unknown workload {name!r}; known: {', '.join(workload_names())}")
    if variant:
        variants = _workload(name).variants
        if variant not in variants:
            raise BadValue(
                f"workload {name} has no variant {variant!r}; variants: {', '.join(variants)}"
            )
    return text.strip()


def algorithm_name(text: str) -> str:
    """A registered algorithm, an OPTIMIZER+SCHEDULE composition, or ``algoperf:PATH`` (a
    submission file, returned with its path made absolute: the name workers resolve)."""
    from trainlab.registry import get_algorithm

    try:
        algorithm = get_algorithm(text.strip())
    except TrainlabError as exc:
        raise BadValue(str(exc)) from None
    return algorithm.name if text.strip().startswith("algoperf:") else text.strip()


def _space_file(option: str, read: Callable[[Path], Any]) -> Callable[[str], Path]:
    def parse(text: str) -> Path:
        path = readable_file(text)
        try:
            return read(path).path
        except TrainlabError as exc:
            raise BadValue(str(exc).removeprefix(f"{option} ")) from None

    return parse


def search_space_file(text: str) -> Path:
    """An AlgoPerf search-space JSON file (dict of ranges/feasible points, or a list of
    points), read and checked; returned absolute."""
    from trainlab.algoperf.search_space import read_search_space

    return _space_file("--tuning-search-space", read_search_space)(text)


def hparams_file(text: str) -> Path:
    """A JSON file of one hyperparameter point ``{name: value}``; returned absolute."""
    from trainlab.algoperf.search_space import read_hparams

    return _space_file("--hparams", read_hparams)(text)


def name_list(item: Callable[[str], str]) -> Callable[[str], list[str]]:
    """``A,B`` checked name by name (the option is repeatable; lists are joined later)."""

    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        if not names:
            raise BadValue(f"expected NAME[,NAME...], got {text!r}")
        return [item(n) for n in names]

    return parse


def word(text: str) -> str:
    """A non-empty name without spaces (checked against the data later)."""
    if not text.strip() or any(c.isspace() for c in text.strip()):
        raise BadValue(f"expected a name, got {text!r}")
    return text.strip()


def assignment(text: str) -> tuple[str, str]:
    """``name=value`` (the value is parsed by the algorithm's search space)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise BadValue(f"expects name=value, got {text!r}")
    return name.strip(), value.strip()


def joined(lists: Sequence[list[str]] | None) -> list[str]:
    """The repeated list options, in order: ``[["a", "b"], ["c"]]`` -> ``["a", "b", "c"]``."""
    return [name for names in lists or [] for name in names]
