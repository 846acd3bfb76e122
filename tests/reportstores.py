"""Finished benchmarks written by hand into a results store, for the HTML report's tests: a
plain one, and a hostile one whose every user-supplied string (plugin algorithm names,
workload and variant names, ``--set`` string values, error text, the benchmark key, the store's
path) is a script-injection payload or holds ``< > & " '``.

Each payload that would run sets ``window.__xss`` (or opens an ``alert``) in a browser."""

from __future__ import annotations

import json
from pathlib import Path

from trainlab.bench.store import Store
from trainlab.spec import EvalRecord

#: plugin algorithm names; the registry takes any string as a name
HOSTILE_ALGORITHMS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2;alert(2)</script>",
    "a\"b&c'd <i>&amp;",
    "nadamw",
]
#: (workload, variant): a variant name and workload names that are also unsafe file names
HOSTILE_WORKLOADS = [
    ("digits_cnn", ""),
    ("digits_cnn", '"><svg onload="window.__xss=3">'),
    ("w</td><script>window.__xss=4</script>", ""),
    ("../../etc/passwd", ""),
    ("W", ""),
    ("w", ""),
    (".hidden$x$", ""),
    ("L" * 300 + "<b>", ""),
    ("\u03bc-workload \u00e9", ""),
]
#: a string hyperparameter value, as `trainlab run --set activation=...` would store it
HOSTILE_SET = "'\"><img src=x onerror=window.__xss=5>"
HOSTILE_ERROR = '<script>window.__xss=6</script> & "worse"'
HOSTILE_KEY = "key<script>window.__xss=7</script>"
#: a directory name for the store (its path is shown in the report)
HOSTILE_DIR = "st<b onmouseover=window.__xss=8>\"&'"

#: every element and attribute the report writes; a payload that became markup would add others
TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "tr",
        "th", "td", "span", "code", "img", "details", "summary"}  # fmt: skip
ATTRIBUTES = {"lang", "charset", "class", "src", "alt"}

PLAIN_ALGORITHMS = ["nadamw", "adamw", "lion"]
PLAIN_WORKLOADS = [("digits_cnn", ""), ("digits_cnn", "gelu"), ("tiny_mlp", "")]


def workload_name(workload: str, variant: str) -> str:
    """The name the report shows: ``workload`` or ``workload:variant``."""
    return f"{workload}:{variant}" if variant else workload


def write_store(
    path: str | Path,
    algorithms: list[str],
    workloads: list[tuple[str, str]],
    *,
    studies: int = 1,
    key: str = "key",
    hp_text: str = "relu",
    error: str | None = None,
) -> int:
    """A finished benchmark of every algorithm on every (workload, variant), two trials per
    study, each with five evaluations (odd trials also record training loss and learning
    rate); the first algorithm is the slowest, the last the fastest; the second algorithm's
    trials carry ``error``. Returns the benchmark id."""
    with Store(path) as store:
        options = {
            "workloads": [w for w, _ in workloads], "algorithms": algorithms,
            "ruleset": "external", "n_trials": 2, "n_studies": studies, "variants": True,
            "eval_every_steps": 10,
        }  # fmt: skip
        bid, _ = store.get_or_create_benchmark(key, {"options": options})
        for a_index, algorithm in enumerate(algorithms):
            for workload, variant in workloads:
                for study in range(studies):
                    for index in range(2):
                        tid = store.create_trial(
                            benchmark_id=bid, study=study, trial_index=index,
                            workload=workload, variant=variant, algorithm=algorithm,
                            mode="steps", seed=index,
                            hyperparameters={"learning_rate": 0.01 * (index + 1),
                                             "activation": hp_text},
                            target_metric="error_rate", target_value=0.1, higher_is_better=0,
                        )  # fmt: skip
                        _finish(store, tid, 1 + a_index + index + study, index % 2 == 1,
                                error if a_index == 1 else None)  # fmt: skip
    return bid


def _finish(store: Store, tid: int, speed: int, extras: bool, error: str | None) -> None:
    store.start_trial(tid)
    reached_at = None
    for k in range(1, 6):
        value = 1.0 / (k * speed)
        loss, lr = (2.0 / (k * speed), 0.1 / k) if extras else (None, None)
        store.add_evaluation(tid, EvalRecord(10 * k, 0.5 * k, {"error_rate": value}, loss, lr))
        if reached_at is None and value <= 0.1:
            reached_at = k
    store.finish_trial(
        tid,
        status="reached" if reached_at else "missed",
        time_to_target=0.5 * reached_at if reached_at else None,
        steps_to_target=10 * reached_at if reached_at else None,
        timed_seconds=2.5, eval_seconds=0.1, wall_seconds=2.7, n_evals=5, steps=50,
        best_metric=1.0 / (5 * speed), error=error,
    )  # fmt: skip


def hostile_store(root: Path) -> tuple[Path, int]:
    """The hostile benchmark in a store under ``root`` (in a directory named
    :data:`HOSTILE_DIR`); returns the store's path and the benchmark id."""
    folder = root / HOSTILE_DIR
    folder.mkdir(parents=True)
    path = folder / "s.db"
    bid = write_store(path, HOSTILE_ALGORITHMS, HOSTILE_WORKLOADS, key=HOSTILE_KEY,
                      hp_text=HOSTILE_SET, error=HOSTILE_ERROR)  # fmt: skip
    return path, bid


def hostile_texts() -> list[str]:
    """Every hostile string the report must show literally (as text, not markup); the
    ``--set`` value is shown inside the hyperparameters' JSON (:func:`hp_json`)."""
    names = [workload_name(w, v) for w, v in HOSTILE_WORKLOADS]
    return [*HOSTILE_ALGORITHMS, *names, HOSTILE_ERROR, HOSTILE_KEY, HOSTILE_DIR]


def hp_json(index: int, hp_text: str = HOSTILE_SET) -> str:
    """The hyperparameters cell of trial ``index`` (0 or 1) as the report shows it."""
    hp = {"learning_rate": 0.01 * (index + 1), "activation": hp_text}
    return json.dumps(hp, sort_keys=True)
