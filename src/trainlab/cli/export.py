"""``trainlab export --mlflow URI | --tensorboard DIR``: the store's trials in MLflow or
TensorBoard (logic in ``trainlab.bench.export``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "export"
HELP = "copy trials (all, or one benchmark's) to MLflow or TensorBoard; re-exporting replaces"


def tracking_uri(text: str) -> str:
    """An MLflow tracking URI: not empty (MLflow would take that for ``./mlflow.db``)."""
    if not text.strip() or text != text.strip():
        raise argtypes.BadValue(
            f"expected a tracking URI (sqlite:///mlflow.db, http://host:5000), got {text!r}"
        )
    return text


def export_dir(text: str) -> Path:
    """A directory to create or fill: not a file, and under a folder this user can write."""
    path = argtypes.output_dir(text)
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argtypes.BadValue(f"{parent} is a file: no directory {text} can be made under it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argtypes.BadValue(f"cannot write {parent}: permission denied")
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--mlflow", type=tracking_uri, default=None, metavar="URI",
                    help="MLflow tracking URI: sqlite:///mlflow.db, http://host:5000, ...; "
                    "one experiment per benchmark (trainlab-benchmark-N), other trials in "
                    "trainlab-runs")  # fmt: skip
    to.add_argument("--tensorboard", type=export_dir, default=None, metavar="DIR",
                    help="TensorBoard log directory: one run directory per trial, "
                    "DIR/benchmark-N/WORKLOAD/ALGORITHM/trial-ID")  # fmt: skip
    p.add_argument(
        "--benchmark",
        type=argtypes.trial_id,
        default=None,
        metavar="ID",
        help="only this benchmark's trials (default: every trial of the store)",
    )
    common.add_store(p, must_exist=True)
    common.add_json(p)


def _quiet_mlflow() -> None:
    """MLflow and its database migrations log at INFO on stderr; the command says one line."""
    import logging

    try:
        import mlflow  # noqa: F401  (its import sets its loggers' levels: set ours after)
    except ImportError:
        return  # the export says what to install
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    from trainlab.bench import export

    with common.open_existing_store(args.store) as store:
        if args.benchmark is not None:
            common.benchmark_record(store, args.benchmark)  # unknown id: one line, exit 2
        if args.mlflow is not None:
            _quiet_mlflow()
            target = f"MLflow at {args.mlflow}"
            try:
                n = export.export_mlflow(store, args.mlflow, args.benchmark)
            except Exception as exc:
                if type(exc).__module__.startswith("mlflow"):  # a bad URI, a server away
                    message = " ".join(str(exc).split())
                    raise TrainlabError(f"--mlflow {args.mlflow}: {message}") from None
                raise
        else:
            target = f"TensorBoard under {args.tensorboard}"
            n = export.export_tensorboard(store, args.tensorboard, args.benchmark)
    if args.json:
        common.print_json({"exported": n, "to": "mlflow" if args.mlflow else "tensorboard",
                           "where": str(args.mlflow or args.tensorboard)})  # fmt: skip
    else:
        print(f"exported {n} trial{'s' * (n != 1)} to {target}")
    return 0
