"""What the commands share: the parser class, options several commands take, store opening,
torch setup, JSON output. (Argument types are in ``cli.argtypes``.)"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

from trainlab.cli import argtypes
from trainlab.errors import TrainlabError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a :class:`TrainlabError` (one line, exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """``argument -j/--jobs: must be >= 1`` reads ``--jobs must be >= 1``: the option by its
        long name, a predicate as a sentence."""
        match = re.match(r"argument (\S+?): (.*)\Z", message, re.S)
        if match:
            option = match.group(1).split("/")[-1]
            text = match.group(2)
            message = f"{option} {text}" if text.startswith("must ") else f"{option}: {text}"
        raise TrainlabError(message)


# ------------------------------------------------------------------------------------------
# shared options


def add_store(p: argparse.ArgumentParser, *, must_exist: bool, default: bool = True) -> None:
    p.add_argument(
        "--store", type=argtypes.existing_store if must_exist else argtypes.store_path,
        default=str(DEFAULT_STORE) if default else None, metavar="FILE.db|URL",
        help=f"results store: a SQLite file (default {DEFAULT_STORE}) or "
        "postgresql://USER@HOST:PORT/DB",
    )  # fmt: skip


#: ``trainlab.bench.store.STALE_AFTER`` and ``DEFAULT_STORE`` (a test keeps them equal; written
#: out so that building the parser imports neither torch nor SQLAlchemy)
STALE_AFTER = 60.0
DEFAULT_STORE = Path("trainlab-runs") / "trainlab.db"


def add_stale_after(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stale-after", type=argtypes.real(1.0, 86400.0), default=STALE_AFTER,
                   metavar="SECONDS",
                   help="a running trial whose process sent no heartbeat for this long is "
                   f"taken over (default {STALE_AFTER:g})")  # fmt: skip


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


#: what scores measure (``--by``): the keys of ``trainlab.bench.scoring.MEASURES`` (a test
#: keeps them equal; written out so that building the parser stays light)
SCORE_BY = ("time", "cpu-time", "ref-steps", "steps", "flops")


def add_by(p: argparse.ArgumentParser, help: str = "what the scores measure") -> None:
    p.add_argument("--by", choices=SCORE_BY, default="time",
                   help=f"{help}: wall-clock timed seconds (AlgoPerf's, default), CPU seconds, "
                   "CPU time in reference steps (robust to a busy machine), steps or FLOPs "
                   "to the target")  # fmt: skip


def add_bootstrap(p: argparse.ArgumentParser) -> None:
    from trainlab.cli import argtypes

    p.add_argument("--bootstrap", type=argtypes.integer(0, 100_000, "a count"), default=2000,
                   metavar="N", help="bootstrap resamples of the studies for the 95 %% "
                   "intervals (0: none; default 2000)")  # fmt: skip


def add_targets(p: argparse.ArgumentParser) -> None:
    from trainlab.cli import argtypes

    p.add_argument("--targets", type=argtypes.targets_source, default="tuned",
                   metavar="tuned|class|PATH",
                   help="target source: the committed tuned targets (default), the workloads' "
                   "class targets, or a targets JSON file (trainlab targets -o)")  # fmt: skip


def add_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=argtypes.jobs, default=None, metavar="J",
                   help="trials in parallel (default: one per core)")  # fmt: skip
    p.add_argument("--threads", type=argtypes.threads, default=None, metavar="T",
                   help="torch threads per trial (default: max(1, cores // jobs))")  # fmt: skip
    p.add_argument("--executor", type=argtypes.executor, default="local",
                   help="local process pool (default) or ray: the Ray cluster at RAY_ADDRESS, "
                        "else a local Ray (needs ray)")  # fmt: skip


def given(args: argparse.Namespace, *names: str) -> list[str]:
    """The options among ``names`` (dest names) that the user gave (not ``None``/``False``)."""
    return [n for n in names if getattr(args, n, None) not in (None, False, [])]


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


# ------------------------------------------------------------------------------------------
# stores, workloads, torch, output


def open_existing_store(path: Path | str):
    """Open, read-only, a store that must exist (checked again: it may have gone since
    parsing)."""
    from trainlab.bench.store import Store

    return Store(path, readonly=True)


def benchmark_record(store, benchmark_id: int | None) -> dict[str, Any]:
    """A benchmark (or the latest), with a plain message when there is none."""
    if benchmark_id is None and not store.benchmarks():
        raise TrainlabError(
            f"the store {store.path} has no benchmarks yet (run `trainlab bench` first)"
        )
    if benchmark_id is not None and not any(b["id"] == benchmark_id for b in store.benchmarks()):
        ids = ", ".join(str(b["id"]) for b in store.benchmarks()) or "none"
        raise TrainlabError(
            f"--benchmark: no benchmark {benchmark_id} in {store.path} (ids: {ids})"
        )
    return store.benchmark(benchmark_id)


def setup_torch(n_threads: int | None, device_name: str) -> str:
    """Set torch's thread count and resolve ``auto`` to a device that exists."""
    import torch

    if n_threads is not None:
        torch.set_num_threads(n_threads)
    if device_name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrainlabError("--device: cuda asked for, but torch sees no CUDA device")
        index = int(device_name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise TrainlabError(
                f"--device: no {device_name} (torch sees {torch.cuda.device_count()} devices)"
            )
    if device_name == "mps" and not torch.backends.mps.is_available():
        raise TrainlabError("--device: mps asked for, but torch sees no MPS device")
    return device_name


def _json_default(value: Any) -> Any:
    return str(value)


def _clean(value: Any) -> Any:
    """inf / nan -> None, recursively, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def print_json(obj: Any) -> None:
    print(json.dumps(_clean(obj), indent=2, default=_json_default, allow_nan=False))
