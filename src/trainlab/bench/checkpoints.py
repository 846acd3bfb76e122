"""Checkpoints of benchmark trials that run as resumable segments (``--search pbt``).

A segment is one trial row (see :mod:`trainlab.bench.pbt`): it starts from the checkpoint its
``parent`` segment saved (or from scratch), trains up to its ``end_step`` and saves its own.
Files live at ``<dir>/<store>/<benchmark id>/<trial id>.pt`` where ``<dir>`` is, in order:

* ``$TRAINLAB_CHECKPOINTS`` when set (workers on other machines must point it at a directory
  they all share, as they share the store);
* ``checkpoints/`` beside a SQLite store's file;
* ``trainlab-runs/checkpoints/`` in the working directory for a PostgreSQL store;

and ``<store>`` names the store (its file name or database, and a digest of its absolute path
or of its URL without the password), so two stores sharing a directory never read each other's
checkpoints. When a PBT benchmark has finished every segment its directory is removed
(:func:`remove_benchmark`): nothing reads those files any more.

A checkpoint holds tensors and plain containers only and is read with
``torch.load(weights_only=True)``: ``{"algorithm": Algorithm.state_dict(state), "step",
"timed_seconds", "cpu_seconds", "ref_steps"}``, the last four the lineage's totals at the save,
which the resumed segment continues from (its evaluations record cumulative steps and timed
seconds). Files are written to a temporary name and renamed, so a SIGKILL never leaves a
half-written checkpoint behind: a segment killed before its save is rerun from its parent's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainlab.bench.store_backends import Location

#: the environment variable that overrides where checkpoints go
ENV = "TRAINLAB_CHECKPOINTS"
#: a resumed segment's data stream is reseeded from (seed, start_step) with this multiplier
STREAM_MIX = 1_000_003


def checkpoint_dir(location: str | os.PathLike | Location) -> Path:
    """The checkpoint directory of a store (see the module doc for the order)."""
    if not isinstance(location, Location):
        location = Location.parse(location)
    if location.kind == "sqlite":
        path = Path(location.target).resolve()
        base, name, identity = path.parent / "checkpoints", path.name, str(path)
    else:
        from sqlalchemy.engine import make_url

        url = make_url(location.target)
        base, name, identity = Path("trainlab-runs") / "checkpoints", url.database or "db", str(
            url.set(password=None))  # fmt: skip
    if os.environ.get(ENV):
        base = Path(os.environ[ENV])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return base / f"{name}-{digest}"


def checkpoint_path(location: Any, benchmark_id: int, trial_id: int) -> Path:
    """Where trial ``trial_id`` of benchmark ``benchmark_id`` saves its checkpoint."""
    return checkpoint_dir(location) / str(benchmark_id) / f"{trial_id}.pt"


def remove_benchmark(location: Any, benchmark_id: int) -> None:
    """Delete a finished benchmark's checkpoints (its directory; nothing if absent)."""
    shutil.rmtree(checkpoint_dir(location) / str(benchmark_id), ignore_errors=True)


def stream_seed(seed: int, start_step: int) -> int:
    """The data-stream seed of a segment starting at ``start_step``: the trial's seed at step 0
    (so generation 0 trains exactly like a ``--search halton`` trial), else a fresh stream
    ``(seed * STREAM_MIX + start_step) mod 2**31`` (the exploited weights saw another order; a
    fresh shuffle avoids replaying the parent's batches)."""
    return seed if start_step == 0 else (seed * STREAM_MIX + start_step) % 2**31


@dataclass(frozen=True)
class Segment:
    """What the runner needs to run a trial as a segment: the checkpoint to start from
    (``None``: from scratch), where to save, and the step to stop at (``stop_step``, cumulative
    along the lineage)."""

    start_from: Path | None
    save_to: Path
    start_step: int
    stop_step: int

    def load(self) -> dict[str, Any] | None:
        """The starting checkpoint (tensors on the CPU), or ``None`` from scratch. A missing
        file raises ``FileNotFoundError`` (the segment fails; its member exploits next)."""
        if self.start_from is None:
            return None
        return torch.load(self.start_from, map_location="cpu", weights_only=True)

    def save(self, algorithm_state: dict[str, Any], step: int, timed_seconds: float,
             cpu_seconds: float, ref_steps: float | None) -> None:  # fmt: skip
        """Write the checkpoint atomically (temporary file, then rename)."""
        self.save_to.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.save_to.with_suffix(f".tmp{os.getpid()}")
        torch.save({"algorithm": algorithm_state, "step": int(step),
                    "timed_seconds": float(timed_seconds), "cpu_seconds": float(cpu_seconds),
                    "ref_steps": None if ref_steps is None else float(ref_steps)}, tmp)  # fmt: skip
        os.replace(tmp, self.save_to)


def segment_of_row(location: Any, row: dict[str, Any]) -> Segment | None:
    """The segment a trial row runs as (``None`` for a row of another searcher)."""
    search = row.get("search") or {}
    if search.get("searcher") != "pbt":
        return None
    bid = row["benchmark_id"]
    parent = search.get("parent")
    return Segment(
        start_from=None if parent is None else checkpoint_path(location, bid, parent),
        save_to=checkpoint_path(location, bid, row["id"]),
        start_step=int(search["start_step"]),
        stop_step=int(search["end_step"]),
    )
