"""The HTML report shows a "Learning-rate sensitivity" section when the store holds a sweep
(and none otherwise), with the sweep's table and plot."""

import re

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
from reportstores import write_store

from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.sensitivity import read_sweeps
from trainlab.bench.store import Store
from trainlab.report.html import build_report


def _sweep(path, lrs, max_steps=5):
    config = BenchmarkConfig(
        workloads=["tiny_blobs"], algorithms=["tiny_sgd"], n_trials=len(lrs), n_studies=1,
        eval_every_steps=5, max_steps=max_steps, full_curve=True, sensitivity_lrs=lrs,
        targets="class",
    )  # fmt: skip
    return run_benchmark(config, path, jobs=1).benchmark_id


def test_the_report_has_a_section_per_sweep(tmp_path):
    store = tmp_path / "s.db"
    write_store(store, ["nadamw", "adamw"], [("digits_cnn", "")])  # no sweep: no section
    page = build_report(store, tmp_path / "plain").read_text()
    assert "Learning-rate sensitivity" not in page

    sweep_id = _sweep(store, [1e-3, 1e-1, 1e39])
    page = build_report(store, tmp_path / "r", benchmark_id=1).read_text()
    assert page.count("<h2>Learning-rate sensitivity</h2>") == 1
    assert f"tiny_blobs (sweep {sweep_id})" in page
    with Store(store, readonly=True) as s:
        (sweep,) = read_sweeps(s, sweep_id)
    section = page[page.index("Learning-rate sensitivity"):page.index("<h2>Trials</h2>")]
    assert f"{sweep.sensitivities['tiny_sgd'].value:.4f}" in section
    assert "(l0)" in section  # the diverged learning rate is capped
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="sensitivity: tiny_blobs',
                     section)  # fmt: skip
    assert list((tmp_path / "r").glob("sensitivity_tiny_blobs_*.png"))
    assert "learning-rate sweep" not in page  # benchmark 1 is not the sweep
    sweep_page = build_report(store, tmp_path / "s", benchmark_id=sweep_id).read_text()
    assert "its scores below rank learning rates, not tuned algorithms" in sweep_page
    assert "nothing is searched, so there is no tuning cost" in sweep_page
