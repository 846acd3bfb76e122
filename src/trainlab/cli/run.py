"""``trainlab run``: one algorithm on one workload under the timing rules, saved in the store."""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import asdict

from trainlab.cli import argtypes, common
from trainlab.errors import OutOfRangeWarning, TrainlabError

NAME = "run"
HELP = "train one algorithm on one workload under the timing rules"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workload", required=True, type=argtypes.workload_name,
                   help="workload name (name:variant allowed)")  # fmt: skip
    p.add_argument("-a", "--algorithm", required=True, type=argtypes.algorithm_name,
                   help="algorithm name or OPTIMIZER+SCHEDULE")  # fmt: skip
    p.add_argument("--set", action="append", default=[], type=argtypes.assignment,
                   metavar="NAME=VALUE", help="hyperparameter (repeatable)")  # fmt: skip
    p.add_argument("--hparams", type=argtypes.hparams_file, default=None, metavar="FILE",
                   help="algoperf:PATH submissions: one hyperparameter point, JSON "
                   "{name: value}")  # fmt: skip
    p.add_argument("--tuning-search-space", type=argtypes.search_space_file, default=None,
                   metavar="FILE", help="algoperf:PATH submissions: an AlgoPerf search space; "
                   "runs its default point (ranges' midpoints, first feasible/listed point), "
                   "--set overrides")  # fmt: skip
    p.add_argument("--seed", type=argtypes.seed, default=0, help="0..2**31-1")
    p.add_argument(
        "--variant", type=argtypes.word, default=None, help="held-out variant of the workload"
    )
    p.add_argument("--eval-every-steps", type=argtypes.eval_every, default=None, metavar="N|auto",
                   help="step mode: evaluate every N steps (deterministic); auto: >= 50 "
                   "evaluations per budget")  # fmt: skip
    p.add_argument("--max-steps", type=argtypes.positive, default=None, metavar="N",
                   help="step budget (step mode); also the schedule's unit: horizon 1 decays "
                   "fully by step N")  # fmt: skip
    p.add_argument("--full-curve", action="store_true", help="keep training after the target")
    p.add_argument("--text-file", type=argtypes.readable_file, default=None, metavar="FILE",
                   help="charlm_gpt: train on this UTF-8 text")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    common.add_targets(p)
    p.add_argument("--device", type=argtypes.device, default="cpu",
                   help="cpu (default), cuda, cuda:N, mps or auto")  # fmt: skip
    p.add_argument("--threads", type=argtypes.threads, default=None,
                   help="torch intra-op threads (per process with --nproc)")  # fmt: skip
    p.add_argument("--nproc", type=argtypes.nproc, default=1, metavar="N",
                   help="data-parallel: N processes share each global batch, gradients "
                   "averaged (gloo on cpu, nccl on cuda); rank 0 times, evaluates and "
                   "stores")  # fmt: skip
    common.add_store(p, must_exist=False)
    common.add_json(p)


def check(args: argparse.Namespace):
    """Combinations, hyperparameters and the workload: everything before the store is opened.
    Returns ``(workload, algorithm, hyperparameters, spec)``."""
    from trainlab.bench.budgets import trial_spec
    from trainlab.registry import get_algorithm, get_workload

    if args.max_steps is not None and args.eval_every_steps is None:
        raise TrainlabError("--max-steps applies to step mode: add --eval-every-steps N")
    if args.variant is not None and ":" in args.workload:
        raise TrainlabError("--variant: the workload already names a variant (name:variant)")
    if args.text_file is not None and args.workload.split(":")[0] != "charlm_gpt":
        raise TrainlabError("--text-file applies to the charlm_gpt workload only")
    args.algorithm = submission_name(args.algorithm, args.hparams, args.tuning_search_space)
    device = common.setup_torch(args.threads, args.device)
    algorithm = get_algorithm(args.algorithm)
    names = [name for name, _ in args.set]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TrainlabError(f"--set: {dupes[0]} is set twice")
    try:
        # a single run may leave the tuning search space (a benchmark may not): warn, go on
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", OutOfRangeWarning)
            hp = algorithm.search_space.validate(dict(args.set), allow_out_of_range=True)
    except TrainlabError as exc:
        raise TrainlabError(f"--set: {exc}") from None
    range_warnings = [f"trainlab: warning: --set: {w.message}" for w in caught]
    options = {"device": device}
    if args.text_file is not None:
        options["text_file"] = str(args.text_file)
    try:
        workload = get_workload(args.workload, args.variant, **options)
    except TrainlabError as exc:
        raise TrainlabError(f"--variant: {exc}" if args.variant else str(exc)) from None
    from trainlab.algoperf.algorithm import SubmissionWarning

    with warnings.catch_warnings(record=True) as caught:  # one line each, as trainlab's own
        warnings.simplefilter("always", SubmissionWarning)
        algorithm.check_workload(workload)
    for w in caught:
        print(f"trainlab: warning: {w.message}", file=sys.stderr)
    targets = args.targets
    if args.text_file is not None and targets == "tuned":
        # no target was ever set on the user's text: the class bar is a quick look, said so
        targets = "class"
        print("trainlab: note: --text-file: the targets were set on the generated corpus; "
              "measuring against the class target (--targets FILE for your own)",
              file=sys.stderr)  # fmt: skip
    spec = trial_spec(workload, targets, eval_every_steps=args.eval_every_steps,
                      max_steps=args.max_steps)  # fmt: skip
    if args.nproc > 1:
        from trainlab.bench.distributed import check_nproc

        check_nproc(args.nproc, algorithm.batch_size(workload, hp), device)
    try:  # hp-dependent preconditions (a depth, a schedule past the budget): before training
        algorithm.check_hyperparameters(workload.with_spec(spec), hp)
    except TrainlabError as exc:
        raise TrainlabError(f"--set: {exc}" if args.set else str(exc)) from None
    for line in range_warnings:  # after every refusal: an error stays the only line
        print(line, file=sys.stderr)
    return workload, algorithm, hp, spec


def submission_name(name: str, hparams, space) -> str:
    """``name`` with ``--hparams`` or ``--tuning-search-space`` attached (AlgoPerf submissions
    only; not both)."""
    from trainlab.algoperf import names

    if hparams is None and space is None:
        return name
    if hparams is not None and space is not None:
        raise TrainlabError("--hparams and --tuning-search-space: give one of them")
    option = "--hparams" if hparams is not None else "--tuning-search-space"
    if not names.is_submission(name):
        raise TrainlabError(f"{option} applies to AlgoPerf submissions (-a algoperf:PATH), not "
                            f"{name}")  # fmt: skip
    if hparams is not None:
        return names.with_file(name, "hparams", hparams)
    return names.with_file(name, "space", space)


def miss_hint(result) -> str:
    """What to try when a run misses its target (the exit code stays 0: a miss is a result)."""
    if result.mode == "steps":
        budget = "a larger --max-steps"
    else:
        budget = "step mode with a larger budget (--eval-every-steps N --max-steps M)"
    how = ("--hparams FILE (AlgoPerf's JSON)" if result.algorithm.startswith("algoperf:")
           else "e.g. --set learning_rate=...; see `trainlab list algorithms`")  # fmt: skip
    return f"hint: {result.status} the target; try other hyperparameters ({how}) or {budget}"


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.runner import run_trial
    from trainlab.bench.store import Store

    workload, algorithm, hp, spec = check(args)
    show = not args.json and not args.quiet
    if args.text_file is not None and not args.json:
        d = workload.describe()
        print(f"{args.text_file}: {d['train_characters']:,} training characters, alphabet of "
              f"{d['alphabet_size']} characters", file=sys.stderr)  # fmt: skip
    if args.nproc > 1:
        result = _run_distributed(args, workload, algorithm, hp, spec, show)
        return finish(args, result, spec)
    progress = report = None
    if show:
        from trainlab.cli import render

        progress, report = render.run_progress(
            f"{workload.full_name} / {algorithm.name}", spec.target
        )
    store = Store(args.store)
    try:
        if progress is not None:
            progress.start()
        with warnings.catch_warnings():  # said once above, as one line
            warnings.simplefilter("ignore", OutOfRangeWarning)
            result = run_trial(
                workload, algorithm, hp, args.seed, spec=spec, full_curve=args.full_curve,
                store=store, on_progress=report, allow_out_of_range=True,
            )  # fmt: skip
    except KeyboardInterrupt:
        if progress is not None:
            progress.live.transient = True  # leave nothing behind
            progress.console.quiet = True
        raise
    finally:
        if progress is not None:
            progress.stop()
        store.close()
    return finish(args, result, spec)


def finish(args: argparse.Namespace, result, spec) -> int:
    """Print the trial's outcome (a summary or JSON); the exit code (1: the trial failed)."""
    if args.json:
        out = result.to_json()
        out["target"] = {"metric": spec.target.metric, "value": spec.target.value,
                         "source": spec.source}  # fmt: skip
        out["evals"] = [asdict(e) for e in result.evals]
        out["store"] = str(args.store)
        common.print_json(out)
    else:
        from trainlab.cli import render

        print(render.summary_line(result, spec))
        if result.status in ("missed", "diverged"):
            print(miss_hint(result))
        print(f"trial {result.trial_id} saved in {args.store}")
    return 1 if result.status == "failed" else 0


def _run_distributed(args, workload, algorithm, hp, spec, show: bool):
    """``--nproc N``: the trial on N processes (:mod:`trainlab.bench.distributed`); rank 0
    writes the store and shows the progress; its result comes back here."""
    from trainlab.bench.distributed import launch

    job = {
        "workload": args.workload, "variant": args.variant, "algorithm": args.algorithm,
        "text_file": None if args.text_file is None else str(args.text_file), "hp": hp,
        "seed": args.seed, "spec": spec, "full_curve": args.full_curve,
        "store": str(args.store), "show": show,
    }  # fmt: skip
    modules = sorted({type(workload).__module__, type(algorithm).__module__})
    return launch(_rank_main, args.nproc, job, device_type=workload.device.type,
                  threads=args.threads, modules=modules)  # fmt: skip


def _rank_main(group, job: dict):
    """One rank of ``trainlab run --nproc N`` (in its own process): build the workload on the
    rank's device, then run (rank 0) or follow (the others) the trial."""
    from trainlab.bench.runner import run_trial
    from trainlab.bench.store import Store
    from trainlab.registry import get_algorithm, get_workload

    options = {"device": str(group.device)}
    if job["text_file"] is not None:
        options["text_file"] = job["text_file"]
    workload = get_workload(job["workload"], job["variant"], **options)
    algorithm = get_algorithm(job["algorithm"])
    store = progress = report = None
    if group.rank == 0:
        store = Store(job["store"])
        if job["show"]:
            from trainlab.cli import render

            progress, report = render.run_progress(
                f"{workload.full_name} / {algorithm.name} ({group.world_size} processes)",
                job["spec"].target,
            )
            progress.start()
    try:
        with warnings.catch_warnings():  # said once, by the parent
            warnings.simplefilter("ignore", OutOfRangeWarning)
            return run_trial(
                workload, algorithm, job["hp"], job["seed"], spec=job["spec"],
                full_curve=job["full_curve"], store=store, on_progress=report,
                allow_out_of_range=True, group=group,
            )  # fmt: skip
    finally:
        if progress is not None:
            progress.stop()
        if store is not None:
            store.close()
