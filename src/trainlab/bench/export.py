"""Copy a results store's trials into MLflow or TensorBoard, to browse them with those tools.

What one trial becomes (the same in both): its hyperparameters and budget fields
(``BUDGET_FIELDS``) as parameters; its placing (workload, variant, algorithm, seed, study,
trial index, benchmark), status and target as tags (TensorBoard: a text summary); one point
per evaluation, at the evaluation's step, of each metric of the evaluation, of ``train_loss``,
``lr`` and ``timed_seconds`` (training seconds so far); and its final figures
(``FINAL_FIGURES``, and each test metric as ``test_<name>``) once, at the trial's last step.
Every trial is exported, finished or not: the status is a tag, and a trial still running is
exported as far as it got (a later export replaces it).

Re-exporting does not duplicate. An MLflow run carries the trial's id and the store's identity
(``trainlab.trial_id``, ``trainlab.store_key``) and a digest of what was exported: a run whose
digest still matches is left alone, any other run of that trial is deleted (MLflow's soft
delete; ``mlflow gc`` purges) and written anew. A TensorBoard run directory belongs to one
trial and is rewritten whole.

The exporters need optional packages (``pip install 'trainlab[mlflow]'``,
``'trainlab[tensorboard]'``) and import them only when called.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainlab.spec import FINISHED, EvalRecord, TrainlabError

#: budget fields of a trial row exported as parameters, where set
BUDGET_FIELDS = ("max_runtime", "eval_period", "step_hint", "max_steps", "eval_every_steps",
                 "nproc")
#: trial-row figures exported once, as final metrics, where set and finite
FINAL_FIGURES = ("time_to_target", "steps_to_target", "cpu_time_to_target",
                 "ref_steps_to_target", "flops_to_target", "best_metric")  # fmt: skip
#: trial-row fields exported as tags, where set
TAG_FIELDS = ("workload", "variant", "algorithm", "seed", "study", "trial_index",
              "benchmark_id", "status", "mode", "target_metric", "target_value",
              "higher_is_better", "target_source")  # fmt: skip
#: experiment of the trials that belong to no benchmark (``trainlab run``)
LONE_EXPERIMENT = "trainlab-runs"
#: changes when what a run holds changes, so that runs of an older export get replaced
EXPORT_VERSION = "1"

_MLFLOW_STATUS = {"pending": "SCHEDULED", "running": "RUNNING", "failed": "FAILED",
                  "interrupted": "KILLED"}
# MLflow's limits per log_batch: 1000 metrics, 100 params, 100 tags, 1000 in all
_PARAMS_PER_BATCH, _METRICS_PER_BATCH = 100, 899


def _mlflow_status(status: str) -> str:
    """The MLflow run status of a trial status: a finished trial's run is ``FINISHED`` (a
    missed or diverged trial is a result too) unless the trial ``failed``."""
    return _MLFLOW_STATUS.get(status, "FINISHED")


def experiment_name(benchmark_id: int | None) -> str:
    """The MLflow experiment of a benchmark's trials (``None``: trials of no benchmark).

    >>> experiment_name(3), experiment_name(None)
    ('trainlab-benchmark-3', 'trainlab-runs')
    """
    return LONE_EXPERIMENT if benchmark_id is None else f"trainlab-benchmark-{benchmark_id}"


def store_identity(store) -> str:
    """What tells this store from another in an MLflow server: its file's absolute path, or its
    URL without the password."""
    if store.location.kind != "sqlite":
        return str(store.location)
    return str(Path(store.location.target).resolve())


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _trials(store, benchmark_id: int | None) -> list[dict[str, Any]]:
    if benchmark_id is not None:
        store.benchmark(benchmark_id)  # TrainlabError when there is none
    return store.trials(benchmark_id=benchmark_id)


def params_of(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters and the budget fields it has (a hyperparameter of the same
    name as a budget field wins)."""
    out = {k: trial[k] for k in BUDGET_FIELDS if trial.get(k) is not None}
    out.update(trial.get("hyperparameters") or {})
    return out


def tags_of(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial's placing, status and target (fields that are set)."""
    return {k: trial[k] for k in TAG_FIELDS if trial.get(k) is not None}


def eval_series(record: EvalRecord) -> dict[str, float]:
    """The metrics of one evaluation: its ``metrics``, ``train_loss``, ``lr`` and
    ``timed_seconds`` (values that are not numbers are left out; NaN and inf stay)."""
    values = {**record.metrics, "train_loss": record.train_loss, "lr": record.lr,
              "timed_seconds": record.timed_seconds}  # fmt: skip
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def final_figures(trial: dict[str, Any]) -> dict[str, float]:
    """A trial's final figures that are set and finite, and its test metrics as ``test_*``."""
    out = {k: v for k in FINAL_FIGURES if (v := _finite(trial.get(k))) is not None}
    for name, value in (trial.get("test_metrics") or {}).items():
        if (v := _finite(value)) is not None:
            out[f"test_{name}"] = v
    return out


def _final_step(trial: dict[str, Any], evals: list[EvalRecord]) -> int:
    return int(trial.get("steps") or (evals[-1].step if evals else 0))


def _start_seconds(trial: dict[str, Any]) -> float:
    return float(trial.get("started") or trial.get("created") or 0.0)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# ------------------------------------------------------------------------------------------
# MLflow


def _import_mlflow():
    try:
        import mlflow  # noqa: F401  (first: a missing mlflow is reported as such)
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrainlabError(
            "exporting to MLflow needs mlflow: pip install 'trainlab[mlflow]'"
        ) from None
    return MlflowClient


def _experiment_id(client, name: str, store) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, tags={"trainlab.store": store_identity(store)})
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _existing_runs(client, experiment_id: str, store_key: str) -> dict[str, list]:
    """This store's runs in an experiment, by trial id."""
    from mlflow.entities import ViewType

    runs: dict[str, list] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], f"tags.`trainlab.store_key` = '{store_key}'",
            run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token,
        )  # fmt: skip
        for run in page:
            runs.setdefault(run.data.tags.get("trainlab.trial_id"), []).append(run)
        token = page.token
        if not token:
            return runs


def _digest(trial: dict[str, Any], evals: list[EvalRecord]) -> str:
    payload = [EXPORT_VERSION, trial, [asdict(e) for e in evals]]
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _write_mlflow_run(client, experiment_id: str, trial, evals, tags: dict[str, str]) -> None:
    from mlflow.entities import Metric, Param, RunTag

    t0 = _start_seconds(trial)
    variant = f":{trial['variant']}" if trial.get("variant") else ""
    run = client.create_run(
        experiment_id, start_time=int(1000 * t0), tags=tags,
        run_name=f"{trial['workload']}{variant} {trial['algorithm']} #{trial['id']}",
    )  # fmt: skip
    run_id = run.info.run_id
    params = [Param(k, _text(v)) for k, v in params_of(trial).items()]
    metrics = [
        Metric(name, value, int(1000 * (t0 + e.timed_seconds)), int(e.step))
        for e in evals
        for name, value in eval_series(e).items()
    ]
    end = int(1000 * float(trial.get("finished") or t0))
    step = _final_step(trial, evals)
    metrics += [Metric(k, v, end, step) for k, v in final_figures(trial).items()]
    # few calls (each is a transaction): params and metrics share batches, within MLflow's
    # limits; the digest comes in the last, so a run cut short is replaced by the next export
    n_batches = max(1, -(-len(params) // _PARAMS_PER_BATCH), -(-len(metrics) // _METRICS_PER_BATCH))
    for b in range(n_batches):
        last = b == n_batches - 1
        client.log_batch(
            run_id,
            metrics=metrics[b * _METRICS_PER_BATCH : (b + 1) * _METRICS_PER_BATCH],
            params=params[b * _PARAMS_PER_BATCH : (b + 1) * _PARAMS_PER_BATCH],
            tags=[RunTag("trainlab.digest", _digest(trial, evals))] if last else [],
        )
    status = _mlflow_status(trial["status"])
    if trial["status"] in FINISHED:
        client.set_terminated(run_id, status, end_time=end)
    elif status != "RUNNING":
        client.update_run(run_id, status=status)


def export_mlflow(store, uri: str, benchmark_id: int | None = None) -> int:
    """Export the trials of ``store`` (all, or those of benchmark ``benchmark_id``) as runs of
    the MLflow tracking server or database at ``uri`` (``sqlite:///mlflow.db``,
    ``http://host:5000``, ...): one experiment per benchmark (:func:`experiment_name`), one run
    per trial. Returns the number of trials exported, up-to-date runs left alone included.
    Raises :class:`TrainlabError` without mlflow or for an unknown benchmark; MLflow's own
    errors (a bad URI, an unreachable server) as ``mlflow.exceptions.MlflowException``."""
    MlflowClient = _import_mlflow()
    trials = _trials(store, benchmark_id)
    client = MlflowClient(tracking_uri=uri)
    identity = store_identity(store)
    store_key = hashlib.sha1(identity.encode()).hexdigest()[:16]
    experiments: dict[int | None, tuple[str, dict[str, list]]] = {}
    for trial in trials:
        bid = trial.get("benchmark_id")
        if bid not in experiments:
            experiment_id = _experiment_id(client, experiment_name(bid), store)
            experiments[bid] = experiment_id, _existing_runs(client, experiment_id, store_key)
        experiment_id, existing = experiments[bid]
        evals = store.evaluations(trial["id"])
        digest = _digest(trial, evals)
        old = existing.get(str(trial["id"]), [])
        if (
            len(old) == 1
            and old[0].data.tags.get("trainlab.digest") == digest
            and old[0].info.status == _mlflow_status(trial["status"])
        ):
            continue  # up to date
        for run in old:
            client.delete_run(run.info.run_id)
        tags = {k: _text(v) for k, v in tags_of(trial).items()}
        tags.update({"trainlab.trial_id": str(trial["id"]), "trainlab.store": identity,
                     "trainlab.store_key": store_key})  # fmt: skip
        _write_mlflow_run(client, experiment_id, trial, evals, tags)
    return len(trials)


# ------------------------------------------------------------------------------------------
# TensorBoard

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    """A path component of letters, digits, ``.``, ``_`` and ``-`` only, that neither starts
    nor ends with one of the last three (never hidden, never ``..``)."""
    name = _UNSAFE.sub("_", str(name)).strip("._-")
    return name or "_"


def run_directory(trial: dict[str, Any]) -> Path:
    """A trial's TensorBoard run directory, relative to the export directory:
    ``benchmark-N/<workload>[-<variant>]/<algorithm>/trial-<id>`` (``runs/...`` for a trial of
    no benchmark).

    >>> run_directory({"id": 7, "benchmark_id": 2, "workload": "mnist1d_mlp", "variant": "",
    ...                "algorithm": "adamw+cosine"}).as_posix()
    'benchmark-2/mnist1d_mlp/adamw_cosine/trial-7'
    """
    group = "runs" if trial.get("benchmark_id") is None else f"benchmark-{trial['benchmark_id']}"
    workload = trial["workload"] + (f"-{trial['variant']}" if trial.get("variant") else "")
    return Path(group, _safe(workload), _safe(trial["algorithm"]), f"trial-{int(trial['id'])}")


def _import_summary_writer():
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; its error is less plain)
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError:
        raise TrainlabError(
            "exporting to TensorBoard needs tensorboard: pip install 'trainlab[tensorboard]'"
        ) from None
    return SummaryWriter, hparams


def _clear(path: Path) -> None:
    """Remove a run directory an earlier export wrote (and nothing else)."""
    if not path.exists():
        return
    if not path.is_dir():
        raise TrainlabError(f"{path} is in the way of a TensorBoard run directory (not a folder)")
    strays = [p for p in path.iterdir() if not p.name.startswith("events.out.tfevents.")]
    if strays:
        raise TrainlabError(
            f"{path} holds {strays[0].name}, which trainlab export did not write; not replacing it"
        )
    shutil.rmtree(path)


def _hparam_value(value: Any) -> int | float | str | bool:
    return value if isinstance(value, int | float | str | bool) else _text(value)


def export_tensorboard(store, directory: str | Path, benchmark_id: int | None = None) -> int:
    """Export the trials of ``store`` (all, or those of benchmark ``benchmark_id``) as
    TensorBoard runs under ``directory``, one run directory per trial (:func:`run_directory`),
    rewritten whole on every export. Scalars at each evaluation's step, the final figures at
    the trial's last step, the parameters and final figures for the HParams tab, and the
    trial's tags as text. Returns the number of trials exported. Raises
    :class:`TrainlabError` without tensorboard, for an unknown benchmark, or when a run
    directory holds files the export did not write; ``OSError`` when it cannot write."""
    SummaryWriter, hparams = _import_summary_writer()
    trials = _trials(store, benchmark_id)
    root = Path(directory)
    for trial in trials:
        path = root / run_directory(trial)
        _clear(path)
        evals = store.evaluations(trial["id"])
        t0 = _start_seconds(trial)
        writer = SummaryWriter(log_dir=str(path))
        try:
            for e in evals:
                for name, value in eval_series(e).items():
                    writer.add_scalar(name, value, int(e.step), walltime=t0 + e.timed_seconds)
            final = final_figures(trial)
            step = _final_step(trial, evals)
            end = float(trial.get("finished") or t0)
            for name, value in final.items():
                writer.add_scalar(name, value, step, walltime=end)
            hp = {k: _hparam_value(v) for k, v in params_of(trial).items()}
            for summary in hparams(hp, final):
                writer.file_writer.add_summary(summary, walltime=end)
            table = "\n".join(f"| {k} | {v} |" for k, v in
                              {"trial_id": trial["id"], **tags_of(trial)}.items())  # fmt: skip
            writer.add_text("trial", "| field | value |\n|---|---|\n" + table, 0, walltime=t0)
        finally:
            writer.close()
    return len(trials)
