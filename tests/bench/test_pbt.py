"""Population Based Training (Jaderberg et al., 2017) as a searcher: checkpoints that copy the
whole training state and make explored hyperparameters take effect, the explore and truncation
rules by hand, and whole PBT benchmarks (segments, lineages, resume, concurrent claims)."""

import copy
import io
import json
import math
import socket
import threading

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
import pytest
import torch

from trainlab.algorithms.recipe import SCHEDULES, OptimizerPart, Recipe
from trainlab.bench import pbt, searchers
from trainlab.bench.benchmark import BenchmarkConfig, make_plan, prepare, run_benchmark
from trainlab.bench.checkpoints import checkpoint_path
from trainlab.bench.store import Store
from trainlab.errors import TrainlabError
from trainlab.registry import get_algorithm, get_workload
from trainlab.search_space import Param, SearchSpace
from trainlab.spec import EvalRecord

# torch.optim.SGD with momentum 0.9 under the cosine schedule: its step is known by hand
SGD_PART = OptimizerPart(
    "t_sgd", SearchSpace((Param("learning_rate", 0.1, 1e-3, 1.0, log=True),)),
    lambda groups, hp: torch.optim.SGD(groups, lr=hp["learning_rate"], momentum=0.9),
)  # fmt: skip


def roundtrip(sd):
    """Through a file and ``torch.load(weights_only=True)``, as a checkpoint goes."""
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def trained(algorithm, hp, steps, seed=0):
    workload = get_workload("tiny_blobs")
    state = algorithm.init(workload, workload.init_model(seed), hp, seed)
    batches = workload.batches(32, seed)
    for step in range(steps):
        algorithm.update(state, next(batches), step)
    return workload, state, batches


def test_exploit_copies_weights_and_optimizer_state():
    algorithm = get_algorithm("heavyball")  # SGDW with momentum, cosine schedule
    hp = algorithm.search_space.validate({"learning_rate": 0.2})
    workload, a, _ = trained(algorithm, hp, 5)
    b = algorithm.init(workload, workload.init_model(7), hp, 7)  # other weights, no state
    algorithm.load_state_dict(b, roundtrip(algorithm.state_dict(a)))
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.equal(x, y), name
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys() and sa
    for k in sa:
        assert all(torch.equal(torch.as_tensor(sa[k][n]), torch.as_tensor(sb[k][n]))
                   for n in sa[k])  # fmt: skip
    assert b.scheduler.last_epoch == a.scheduler.last_epoch == 5
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(a.optimizer.param_groups[0]["lr"])


def test_an_explored_learning_rate_is_the_one_used():
    algorithm = Recipe(SGD_PART, SCHEDULES["cosine"])
    hp = algorithm.search_space.validate({"learning_rate": 0.1, "warmup_fraction": 0.0})
    workload, a, batches = trained(algorithm, hp, 3)
    sd = roundtrip(algorithm.state_dict(a))
    explored = {**hp, "learning_rate": 0.05}
    b = algorithm.init(workload, workload.init_model(1), explored, 0)
    algorithm.load_state_dict(b, sd)
    factor = 0.5 * (1 + math.cos(math.pi * 3 / 20))  # cosine at step 3 of step_hint 20
    assert [g["lr"] for g in b.optimizer.param_groups] == pytest.approx([0.05 * factor] * 2)
    # the next update by hand: buf <- 0.9 buf + g; p <- p - lr_t buf (torch.optim.SGD)
    batch = next(batches)
    reference = copy.deepcopy(b.model)
    grads = torch.autograd.grad(workload.mean_loss(reference, batch), reference.parameters())
    params = list(b.model.parameters())
    before = [p.detach().clone() for p in params]
    buffers = [b.optimizer.state[p]["momentum_buffer"].clone() for p in params]
    algorithm.update(b, batch, 3)
    for p, p0, g, buf in zip(params, before, grads, buffers, strict=True):
        assert torch.allclose(p, p0 - 0.05 * factor * (0.9 * buf + g), atol=1e-7)


def test_algorithms_with_state_of_their_own_refuse_checkpoints():
    for name in ("tiny_sgd", "ema", "autolrs"):
        with pytest.raises(TrainlabError, match=f"{name} does not support checkpoints"):
            get_algorithm(name).check_checkpoints()
    get_algorithm("adamw").check_checkpoints()
    get_algorithm("lion+rex").check_checkpoints()


class Script:
    """A random generator whose draws are given: ``random()`` and ``choice()`` pop in order."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def random(self):
        return self.draws.pop(0)

    def choice(self, seq):
        return seq[self.draws.pop(0)]


SPACE = SearchSpace((
    Param("lr", 0.1, 1e-3, 1.0, log=True),
    Param("width", 4, 1, 10, kind="int"),
    Param("act", "relu", kind="choice", choices=("relu", "gelu", "tanh")),
    Param("wd", 0.5, 0.0, 0.55),
))  # fmt: skip


def test_explore_perturbs_clips_rounds_and_resamples():
    hp = {"lr": 0.1, "width": 4, "act": "relu", "wd": 0.5}
    # lr: keep (0.9 >= 0.25), factor index 1 (1.2); width: keep, 0.8 -> 3.2 -> 3;
    # act: 0.1 < 0.25 -> resample index 2; wd: keep, 1.2 -> 0.6 clipped to 0.55
    out = pbt.explore(hp, SPACE, Script(0.9, 1, 0.9, 0, 0.1, 2, 0.9, 1), 0.25)
    assert out == {"lr": pytest.approx(0.12), "width": 3, "act": "tanh", "wd": 0.55}
    # resample: a fresh value from the unit draw (log scale: 1e-3 * 1000^0.5); categorical kept
    out = pbt.explore(hp, SPACE, Script(0.0, 0.5, 0.9, 0, 0.9, 0.9, 0), 0.25)
    assert out == {"lr": pytest.approx(10**-1.5), "width": 3, "act": "relu", "wd": 0.4}
    # held values never move, and draw nothing
    out = pbt.explore(hp, SPACE, Script(0.9, 1, 0.9, 0.9, 1), 0.25, held={"lr"})
    assert out["lr"] == 0.1 and out["width"] == 5 and out["wd"] == 0.55
    # P = 1: everything drawn afresh (int 1 + 9 * 0.5 = 5.5 -> 6 (round half to even: 6))
    out = pbt.explore(hp, SPACE, Script(0.0, 1.0 - 1e-9, 0.0, 0.5, 0.0, 1, 0.0, 0.0), 1.0)
    assert out == {"lr": pytest.approx(1.0), "width": 6, "act": "gelu", "wd": 0.0}


def seg(id, member, status, last, generation=0, steps=10, higher=0, **extra):
    search = {"searcher": "pbt", "member": member, "generation": generation,
              "start_step": 10 * generation, "end_step": 10 * generation + 10, "parent": None,
              "exploited": None, "ready": 10, "quantile": 0.25, "resample": 0.25, "seed": 0}
    row = {"id": id, "study": 0, "trial_index": member, "algorithm": "a", "workload": "w",
           "variant": "", "mode": "steps", "max_steps": 40, "max_runtime": 1.0,
           "eval_every_steps": 5, "eval_period": 1.0, "step_hint": 40, "nproc": 1,
           "target_source": "file", "target_metric": "loss", "target_value": 0.0,
           "status": status, "steps": steps, "higher_is_better": higher,
           "hyperparameters": {"lr": 0.1 * (member + 1)}, "seed": member, "search": search,
           "timed_seconds": 1.0, "cpu_seconds": 1.0, "time_to_target": None,
           "steps_to_target": None, "cpu_time_to_target": None, "best_metric": last}
    row.update(extra)
    return row


def test_truncation_ranks_ties_by_member_and_diverged_last():
    rows = [seg(1, 0, "missed", 0.5), seg(2, 1, "diverged", None), seg(3, 2, "missed", 0.3),
            seg(4, 3, "missed", 0.3), seg(5, 4, "failed", None), seg(6, 5, "missed", 0.9),
            seg(7, 6, "missed", 0.2), seg(8, 7, "missed", 0.2)]  # fmt: skip
    last = {r["id"]: r["best_metric"] for r in rows}
    top, bottom = pbt.truncation(rows, last, 0.25)  # k = ceil(8 / 4) = 2; loss: lower first
    assert [r["id"] for r in top] == [7, 8]  # tie at 0.2: member 6 before member 7
    assert [r["id"] for r in bottom] == [2, 5]  # diverged, failed: last, by member
    assert pbt.truncation(rows[:1], last, 0.25) == ([], [])  # alone: k = floor(1/2) = 0
    top, bottom = pbt.truncation([rows[5], *rows[2:4]], last, 0.5)  # k = 2 > 1.5 -> 1
    assert [r["id"] for r in top] == [3] and [r["id"] for r in bottom] == [6]
    assert pbt.truncation([{**r, "higher_is_better": 1} for r in rows], last, 0.25)[0][0][
        "id"] == 6  # fmt: skip


def decide(rows, held=None):
    last = {r["id"]: r.get("best_metric") for r in rows if r["status"] != "pending"}
    return pbt.next_segment(rows, last, {"a": SearchSpace((Param("lr", 0.1, 1e-3, 1.0),))},
                            held)  # fmt: skip


def test_the_bottom_member_copies_a_top_one_and_explores_with_its_seeded_draws():
    rows = [seg(1, 0, "missed", 0.2), seg(2, 1, "missed", 0.4), seg(3, 2, "missed", 0.3),
            seg(4, 3, "missed", 0.9)]  # fmt: skip
    child = decide(rows)  # member 0 goes first: top, it continues from its own checkpoint
    assert child["search"] | {} == {**rows[0]["search"], "generation": 1, "start_step": 10,
                                    "end_step": 20, "parent": 1, "exploited": None}
    assert child["hyperparameters"] == {"lr": pytest.approx(0.1)} and child["seed"] == 0
    rows.append({**rows[0], **child, "id": 5, "status": "pending", "best_metric": None})
    assert decide(rows) is None  # a planned segment of generation 1 goes before a new one
    rows[-1]["status"] = "running"
    for member, parent in ((1, 2), (2, 3)):  # the middle members continue as they are
        child = decide(rows)
        assert (child["search"]["member"], child["search"]["parent"]) == (member, parent)
        rows.append({**rows[0], **child, "id": 5 + member, "status": "running"})
    child = decide(rows)  # member 3, the bottom quantile (k = 1), copies the top: member 0
    space = SearchSpace((Param("lr", 0.1, 1e-3, 1.0),))
    rng = pbt.decision_rng(0, 0, 3, 1)  # the draws the decision makes, in order
    donor = rng.choice([rows[0]])
    lr = pbt.explore(donor["hyperparameters"], space, rng, 0.25)["lr"]
    assert child["search"]["member"] == 3 and child["seed"] == 3
    assert child["search"]["parent"] == 1 and child["search"]["exploited"] == 0
    assert child["hyperparameters"]["lr"] == pytest.approx(lr) != pytest.approx(0.4)
    assert child["search"]["start_step"] == 10 and child["search"]["end_step"] == 20


def test_diverged_waits_for_donors_and_reached_members_stop():
    rows = [seg(1, 0, "diverged", None, steps=4), seg(2, 1, "running", None)]
    assert decide(rows) is None  # alone in its generation: no top quantile to copy yet
    rows = [seg(1, 0, "diverged", None, steps=4), seg(2, 1, "missed", 0.3),
            seg(3, 2, "reached", 0.0, steps=5, time_to_target=0.5, steps_to_target=5,
                cpu_time_to_target=0.5), seg(4, 3, "missed", 0.4)]  # fmt: skip
    # top (k = 1) is the reached member 2, whose state is not copied: member 0 cannot move;
    # members 1 and 3 would start at 1 s, 10 steps: past the reached lineage (0.5 s, 5 steps)
    assert decide(rows) is None
    rows[2].update(time_to_target=2.0, steps_to_target=15, cpu_time_to_target=2.0)
    child = decide(rows)  # member 1 continues (it could still be faster)
    assert child["search"]["member"] == 1 and child["search"]["parent"] == 2
    last = [seg(1, 0, "missed", 0.2, generation=3, steps=40), seg(2, 1, "missed", 0.9,
            generation=3, steps=40), seg(3, 2, "missed", 0.3, generation=3, steps=40),
            seg(4, 3, "diverged", None, generation=3, steps=32)]  # fmt: skip
    assert decide(last) is None  # generation 3 ended at the budget (40 steps)


def config(tmp_path, reachable=False, **kw):
    targets = tmp_path / "targets.json"  # unreachable: every member trains its whole budget
    targets.write_text(json.dumps({"workloads": {"tiny_blobs": {
        "metric": "loss", "value": 0.3 if reachable else 0.0, "higher_is_better": False,
        "max_runtime": 2.0, "step_hint": 40}}}))  # fmt: skip
    base = dict(workloads=["tiny_blobs"], algorithms=["heavyball"], n_trials=4, n_studies=1,
                eval_every_steps=5, max_steps=15, targets=str(targets), search="pbt",
                pbt_ready=5)  # fmt: skip
    return BenchmarkConfig(**{**base, **kw})


def summary(db):
    with Store(db, readonly=True) as store:
        trials = store.trials()
        evals = {t["id"]: [(e.step, e.metrics) for e in store.evaluations(t["id"])]
                 for t in trials}  # fmt: skip
    return trials, evals


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A PBT benchmark run to its end in one go: (its directory, store, run)."""
    root = tmp_path_factory.mktemp("whole")
    saved = {}  # trial id -> whether its checkpoint existed when it finished

    def done(row, outcome):
        saved[row["id"]] = checkpoint_path(root / "s.db", row["benchmark_id"], row["id"]).exists()

    run = run_benchmark(config(root), root / "s.db", jobs=1, on_trial_done=done)
    run.saved = saved
    return root, root / "s.db", run


GENERATIONS = [(m, g) for m in range(4) for g in range(3)]  # 4 members x 15 / 5 steps


def test_a_whole_pbt_benchmark_runs_its_generations_and_records_lineages(whole):
    tmp_path, db, run = whole
    trials, evals = summary(db)
    assert run.total == len(trials) == 12 and run.ran == 12
    assert sorted((t["search"]["member"], t["search"]["generation"]) for t in trials) == GENERATIONS
    by_id = {t["id"]: t for t in trials}
    for t in trials:
        s = t["search"]
        assert [step for step, _ in evals[t["id"]]] == [s["end_step"]]
        assert t["steps"] == s["end_step"] == s["start_step"] + 5
        if s["generation"]:  # cumulative along the lineage: timed seconds go on
            parent = by_id[s["parent"]]
            assert parent["search"]["generation"] == s["generation"] - 1
            assert parent["search"]["member"] == (s["exploited"] if s["exploited"] is not None
                                                  else s["member"])  # fmt: skip
            assert t["timed_seconds"] > parent["timed_seconds"]
    # one checkpoint per segment that has a next one (the last generation saves none), all
    # removed once the benchmark has finished
    assert all(run.saved[t["id"]] == (t["search"]["generation"] < 2) for t in trials)
    assert not checkpoint_path(db, run.benchmark_id, 1).parent.exists()
    best = pbt.best_segments(trials)[("heavyball", "tiny_blobs", "", 0)]
    chain = pbt.lineage(trials, best["id"])
    assert [r["search"]["generation"] for r in chain] == [0, 1, 2]
    schedule = pbt.hp_schedule(chain)
    assert [s for s, _ in schedule] == [0, 5, 10]
    assert schedule[0][1] == chain[0]["hyperparameters"]
    # generation 0 is the halton trial's first ready steps: same seed, data and schedule
    halton = tmp_path / "h.db"
    run_benchmark(config(tmp_path, search="halton"), halton, jobs=1)
    h_trials, h_evals = summary(halton)
    for t in trials:
        if t["search"]["generation"] == 0:
            full = dict(h_evals[h_trials[t["trial_index"]]["id"]])
            assert all(full[step] == m for step, m in evals[t["id"]])
    assert run_benchmark(config(tmp_path), db, jobs=1).ran == 0  # all done


def test_a_member_that_reached_the_target_stops(tmp_path):
    db = tmp_path / "s.db"
    run_benchmark(config(tmp_path, reachable=True), db, jobs=1)
    trials, _ = summary(db)
    reached = [t for t in trials if t["status"] == "reached"]
    assert reached
    for t in reached:  # no later segment of that member, and nobody copies it
        assert not any(r["search"]["member"] == t["search"]["member"]
                       and r["search"]["generation"] > t["search"]["generation"] for r in trials)
        assert not any(r["search"]["parent"] == t["id"] for r in trials)


def test_a_killed_pbt_benchmark_resumes_without_training_a_segment_twice(tmp_path, whole):
    db = tmp_path / "s.db"
    ran = []

    def stop_after_five(row, outcome):
        ran.append(row["id"])
        if len(ran) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config(tmp_path), db, jobs=1, on_trial_done=stop_after_five)
    # a process SIGKILLed mid-segment: the 6th segment claimed (added) and half trained
    dead = Store(db, owner=f"{socket.gethostname()}:999999999:dead", heartbeat=False)
    bid = dead.benchmark()["id"]
    half = searchers.claimer(dead, bid, config(tmp_path))()
    dead.start_trial(half)
    dead.add_evaluation(half, EvalRecord(10, 0.1, {"loss": 9.0, "accuracy": 0.0}))
    dead.engine.dispose()
    assert dead.trial(half)["search"]["generation"] == 1
    resumed = run_benchmark(config(tmp_path), db, jobs=1)
    assert resumed.ran == 12 - 5 and resumed.already_finished == 5
    trials, evals = summary(db)
    assert sorted((t["search"]["member"], t["search"]["generation"]) for t in trials) == GENERATIONS
    assert all(t["status"] == "missed" for t in trials)
    w_trials, w_evals = summary(whole[1])  # step mode, --jobs 1: the same decisions and curves
    assert [(t["search"], t["hyperparameters"]) for t in trials] == [
        (t["search"], t["hyperparameters"]) for t in w_trials]  # fmt: skip
    assert [evals[t["id"]] for t in trials] == [w_evals[t["id"]] for t in w_trials]


def test_concurrent_claimers_never_add_the_same_segment(tmp_path, location):
    cfg = config(tmp_path, n_trials=6)
    with Store(location) as store:
        bid, _ = prepare(store, make_plan(cfg))
    got = []

    def work():
        with Store(location) as mine:
            claim = searchers.claimer(mine, bid, cfg)
            while (trial_id := claim()) is not None:
                got.append(trial_id)
                row = mine.trial(trial_id)
                end = row["search"]["end_step"]
                mine.start_trial(trial_id)  # "trains" it: a metric from its hyperparameters
                loss = row["hyperparameters"]["learning_rate"]
                mine.add_evaluation(trial_id, EvalRecord(end, 0.1, {"loss": loss}))
                mine.finish_trial(trial_id, status="missed", best_metric=loss, steps=end,
                                  timed_seconds=0.1 * end, cpu_seconds=0.1 * end)  # fmt: skip

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Store(location, readonly=True) as store:
        trials = store.trials(benchmark_id=bid)
    pairs = [(t["search"]["member"], t["search"]["generation"]) for t in trials]
    assert len(got) == len(set(got)) == len(trials) == 6 * 3
    assert sorted(pairs) == [(m, g) for m in range(6) for g in range(3)]


@pytest.mark.parametrize("kw, words", [
    ({"n_trials": 3}, "population of >= 4"),
    ({"population": 2}, "population of >= 4"),
    ({"pbt_quantile": 0.0}, r"--pbt-quantile must be in \(0, 0.5\]"),
    ({"pbt_quantile": 0.75}, r"--pbt-quantile must be in \(0, 0.5\]"),
    ({"pbt_resample": 1.5}, r"--pbt-resample must be in \[0, 1\]"),
    ({"pbt_ready": 0}, "--pbt-ready must be >= 1"),
    ({"ruleset": "self", "n_trials": 4}, "nothing to search"),
    ({"early_stop": "lc-pfn"}, "--early-stop applies to --search halton and asha"),
])  # fmt: skip
def test_bad_settings_are_refused_before_anything_runs(tmp_path, kw, words):
    with pytest.raises(TrainlabError, match=words):
        config(tmp_path, **kw)


def test_an_algorithm_without_checkpoints_is_refused_before_anything_is_stored(tmp_path):
    with pytest.raises(TrainlabError, match="tiny_sgd does not support checkpoints"):
        run_benchmark(config(tmp_path, algorithms=["tiny_sgd"]), tmp_path / "s.db", jobs=1)
    assert not (tmp_path / "s.db").exists()


def test_default_ready_gives_about_eight_rounds_on_evaluation_steps():
    row = {"mode": "steps", "eval_every_steps": 5, "max_steps": 400, "step_hint": 400}
    assert pbt.segment_steps(None, row) == 45  # ceil(400 / 9) = 45: 9 segments, 8 rounds
    assert pbt.segment_steps(12, row) == 15  # rounded up to an evaluation
    assert pbt.segment_steps(None, {"mode": "time", "step_hint": 90}) == 10


def test_report_show_and_progress_know_the_segments(whole, tmp_path):
    from rich.console import Console

    from trainlab.cli import render
    from trainlab.report.html import build_report

    _, db, run = whole
    page = build_report(db, tmp_path / "report", run.benchmark_id, n_boot=0).read_text()
    assert "<h2>Population Based Training</h2>" in page and "best PBT lineage of" in page
    assert list((tmp_path / "report").glob("pbt_*.png"))
    trials, _ = summary(db)
    console = Console(record=True, width=250, file=io.StringIO())
    console.print(render.trials_table(trials, "t"))
    text = console.export_text()
    assert "search" in text and "m3 g2" in text and "m0 g0" in text
    # the overall bar's total grows with the rows a searcher adds (ASHA's 14/9 before)
    display = render.BenchmarkDisplay(Console(file=io.StringIO()))
    rows = {t["id"]: t for t in trials[:4]}
    display.start(None, run.benchmark_id, rows, 0)
    for t in trials:
        rows[t["id"]] = t
        display.done(t, {"status": t["status"]})
    task = display.progress.tasks[0]
    display.stop()
    assert (task.completed, task.total) == (12, 12)


def checkpointable():
    from trainlab.registry import algorithm_names

    names = []
    for name in algorithm_names():
        try:
            get_algorithm(name).check_checkpoints()
        except TrainlabError:
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("name", checkpointable())
def test_a_restored_checkpoint_continues_exactly_like_the_run_it_came_from(name):
    """Every algorithm that claims checkpoints: 3 steps, save, restore into a fresh state with
    the same hyperparameters; the next 2 steps give the same weights as going on unbroken."""
    algorithm = get_algorithm(name)
    workload = get_workload("tiny_blobs", "mlp")
    hp = algorithm.search_space.validate({})
    a = algorithm.init(workload, workload.init_model(0), hp, 0)
    batches = list(zip(range(5), workload.batches(32, 0), strict=False))
    for step, batch in batches[:3]:
        algorithm.update(a, batch, step)
    b = algorithm.init(workload, workload.init_model(1), hp, 0)
    algorithm.load_state_dict(b, roundtrip(algorithm.state_dict(a)))
    for step, batch in batches[3:]:
        algorithm.update(a, batch, step)
        algorithm.update(b, batch, step)
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(x, y)


def test_the_tuning_cost_charges_each_segment_its_own_steps(whole):
    """Segments record steps cumulative along their lineage; the tuning cost
    (:mod:`trainlab.bench.tuning_cost`) must charge each one only the steps it trained."""
    from trainlab.bench.tuning_cost import trial_costs

    _, db, _ = whole
    trials, _ = summary(db)
    costs = {c.id: c.cost for c in trial_costs(trials, by="steps")}
    assert costs == {t["id"]: 5.0 for t in trials}  # 12 segments of ready = 5 steps
    seconds = {c.id: c.cost for c in trial_costs(trials, by="time")}
    by_id = {t["id"]: t for t in trials}
    for t in trials:  # own seconds: the lineage's total minus the parent's
        parent = by_id.get(t["search"]["parent"])
        own = t["timed_seconds"] - (parent["timed_seconds"] if parent else 0.0)
        assert seconds[t["id"]] == pytest.approx(own)


def test_two_stores_in_one_directory_never_share_checkpoints(tmp_path, monkeypatch):
    a, b = checkpoint_path(tmp_path / "a.db", 1, 5), checkpoint_path(tmp_path / "b.db", 1, 5)
    assert a != b and a.parent.parent.parent == b.parent.parent.parent == tmp_path / "checkpoints"
    monkeypatch.setenv("TRAINLAB_CHECKPOINTS", str(tmp_path / "shared"))
    pg = [checkpoint_path(f"postgresql://u:{pw}@host{h}/runs", 1, 5)
          for h, pw in ((1, "x"), (1, "y"), (2, "x"))]  # fmt: skip
    assert pg[0] == pg[1] != pg[2]  # the password is not part of a store's identity
    shared = (*pg, checkpoint_path(tmp_path / "a.db", 1, 5))
    assert all(p.is_relative_to(tmp_path / "shared") for p in shared)


def test_a_ready_that_leaves_no_round_in_the_budget_is_refused(tmp_path):
    with pytest.raises(TrainlabError, match="leaves no exploit/explore round"):
        make_plan(config(tmp_path, pbt_ready=15))


def test_show_says_where_a_trial_sits_in_its_searcher():
    pbt_row = {"searcher": "pbt", "member": 2, "generation": 3, "start_step": 30,
               "end_step": 40, "parent": 17, "exploited": 0}  # fmt: skip
    (line,) = searchers.detail_lines(pbt_row)
    assert line.startswith("PBT member 2, generation 3: steps 30-40, from trial 17's checkpoint "
                           "(member 0's: exploited, then explored)")  # fmt: skip
    first = {**pbt_row, "generation": 0, "start_step": 0, "parent": None, "exploited": None}
    assert "steps 0-40, from scratch;" in searchers.detail_lines(first)[0]
    asha_row = {"searcher": "asha", "rung": 1, "rungs": 3, "eta": 3, "parent": 8}
    assert searchers.detail_lines(asha_row) == [
        "ASHA rung 1 of 0-2 (eta 3), promoted from trial 8"]
    assert searchers.detail_lines(None) == searchers.detail_lines({"early_stop": {}}) == []
