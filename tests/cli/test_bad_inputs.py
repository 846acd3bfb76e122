"""Every command fed a table of bad inputs: each must be exit code 2, exactly one line on stderr
starting ``trainlab: error:``, no traceback, and nothing written (the files of the test's world,
the results store among them, byte for byte as before; no store or report created).

The cases are generated from each option's kind (``BAD``: empty, negative, zero, huge, NaN,
inf, wrong type, unknown name, missing file, directory, ...), plus combinations that conflict
or would be ignored (``EXTRA``). ``{name}`` in a value is a path of the world (``world``)."""

import importlib.util
import json
import os

import pytest

from trainlab.bench.store import Store

BAD = {
    "pos": ["", "0", "-5", "1.5", "x", "nan", "inf", "1e3", "99999999999999999999"],
    "count": ["", "0", "-1", "1001", "2.5", "x", "nan", "99999999999999999999"],
    "count0": ["", "-1", "100001", "2.5", "x", "nan", "inf"],
    "seed": ["", "-1", "2147483648", "99999999999999999999", "1.5", "x", "nan", "inf"],
    "id": ["", "0", "-1", "x", "1.5", "nan", "9223372036854775808"],
    "jobs": ["", "0", "-2", "1025", "x", "1.5", "inf"],
    # more processes than the machine's cores (on cpu) is refused by the command
    "nproc": ["", "0", "-2", "1025", "x", "1.5", "inf", str((os.cpu_count() or 1) + 1)],
    "real": ["", "0", "-1", "nan", "inf", "-inf", "x", "1e400"],
    "prob": ["", "0", "1", "-0.5", "1.5", "nan", "inf", "x"],
    "scale": ["", "0", "-1", "nan", "inf", "x", "1e400", "1e9"],
    "r_max": ["", "1", "0.5", "0", "-2", "nan", "inf", "x", "1e400"],
    "every": ["", "0", "-3", "x", "autoo", "nan", "inf", "1.5"],
    "workload": ["", ",", "nope", "tiny_blobs:nope", "nope:x", "tiny_blobs,nope", "TINY_BLOBS"],
    "algorithm": ["", ",", "nope", "nope+cosine", "adamw+nope", "tiny_sgd,nope"],
    "device": ["", "bogus", "gpu", "cuda:x", "cuda:", "CPU", "cuda:999"],
    "choice": ["", "bogus"],
    "executor": ["", "bogus", "LOCAL", *([] if importlib.util.find_spec("ray") else ["ray"])],
    "name": ["", "nope", "two words"],
    "new_store": ["", "{dir}", "{text}", "{text}/sub.db"],
    "store": ["", "{missing}", "{dir}", "{text}", "{empty}"],
    "readable": ["", "{missing}", "{dir}"],
    # an AlgoPerf search space or --hparams point (JSON)
    "space": ["", "{missing}", "{dir}", "{text}", "{json_list}", "{empty}"],
    "writable": ["", "{dir}", "{missing}/x.csv"],
    "out_dir": ["", "{text}"],
    "log_dir": ["", "{text}", "{text}/sub"],
    "uri": ["", " ", "bogus://x", " sqlite:///x.db"],
    "targets": ["", "{dir}", "{text}", "{json_list}", "{missing}/t.json"],
    # --targets tuned|class|PATH: an existing, well-formed targets file
    "target_source": ["", "tunned", "{missing}", "{dir}", "{text}", "{json_list}", "{empty}"],
    "times": [
        "",
        "{missing}",
        "{dir}",
        "{empty}",
        "{csv_header}",
        "{csv_dup}",
        "{csv_zero}",
        "{csv_nan}",
        "{csv_neg}",
        "{csv_binary}",
        "{csv_columns}",
        "{csv_fields}",
    ],  # fmt: skip
    # --lrs of trainlab sensitivity: too few, non-positive, repeated, bad LO:HI:N syntax
    "lrs": ["", "1e-3", "1e-3,1e-2", "0,1e-2,1e-1", "-1e-3,1e-2,1e-1", "1e-3,1e-3,1e-2",
            "nan,1,2", "inf,1,2", "x,1,2", "1e-3:1e-1", "1e-1:1e-3:5", "1e-3:1e-1:2",
            "x:y:3", "0:1e-1:5", "1e-3:1e-1:3:4", "1e-3:1e-1:x"],
    "set": [
        "",
        "learning_rate",
        "=0.1",
        "learning_rate=",
        "lr=0.1",
        "learning_rate=inf",
        "learning_rate=x",
        "learning_rate=nan",
    ],  # fmt: skip
}

RUN = ["run", "-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "5", "--max-steps",
       "10", "--quiet", "--store", "{new}"]  # fmt: skip
BENCH = ["bench", "-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "5", "--max-steps",
         "10", "--trials", "1", "--jobs", "1", "--quiet", "--store", "{new}"]  # fmt: skip
TARGETS = ["targets", "-w", "tiny_blobs", "--trials", "1", "--seeds", "1", "--jobs", "1",
           "--eval-every-steps", "5", "--max-steps", "10", "--store", "{new}",
           "--output", "{new_json}"]  # fmt: skip
SENSITIVITY = ["sensitivity", "-w", "tiny_blobs", "-a", "tiny_sgd", "--lrs", "1e-3,1e-2,1e-1",
               "--seeds", "1", "--max-steps", "10", "--jobs", "1", "--quiet", "--store",
               "{new}"]  # fmt: skip
BASES = {
    "run": RUN,
    "show": ["show", "--store", "{db}"],
    "bench": BENCH,
    "score": ["score", "--store", "{db}"],
    "compare": ["compare", "tiny_sgd", "tiny_selftuned", "--store", "{db}"],
    "report": ["report", "--store", "{db}", "-o", "{new_dir}"],
    "targets": TARGETS,
    "demo": ["demo", "--store", "{new}", "-o", "{new_dir}", "--jobs", "1"],
    "export": ["export", "--tensorboard", "{new_dir}", "--store", "{db}"],
    "extrapolate": ["extrapolate", "1", "--store", "{db}"],
    "sensitivity": SENSITIVITY,
}
OPTIONS = {
    "run": {"-w": "workload", "-a": "algorithm", "--set": "set", "--seed": "seed",
            "--variant": "name", "--eval-every-steps": "every", "--max-steps": "pos",
            "--text-file": "readable", "--device": "device", "--threads": "jobs",
            "--store": "new_store", "--targets": "target_source", "--nproc": "nproc",
            "--hparams": "space", "--tuning-search-space": "space"},
    "show": {"ID": "id", "--limit": "pos", "--store": "store"},
    "bench": {"-w": "workload", "-a": "algorithm", "--ruleset": "choice", "--trials": "count",
              "--studies": "count", "--seed": "seed", "--eval-every-steps": "every",
              "--max-steps": "pos", "--max-runtime": "real", "--budget-scale": "scale",
              "--benchmark": "id", "--by": "choice", "--jobs": "jobs", "--threads": "jobs",
              "--executor": "executor", "--store": "new_store", "--targets": "target_source",
              "--tuning-search-space": "space", "--early-stop": "choice",
              "--early-stop-threshold": "prob"},
    "score": {"--times": "times", "--benchmark": "id", "--by": "choice", "--r-max": "r_max",
              "--save-times": "writable", "--store": "store", "--reference": "name",
              "--bootstrap": "count0"},
    "compare": {"--benchmark": "id", "--by": "choice", "--bootstrap": "count0",
                "--store": "store"},
    "report": {"-o": "out_dir", "--benchmark": "id", "--reference": "name", "--store": "store",
               "--bootstrap": "count0"},
    "targets": {"-w": "workload", "--trials": "count", "--seeds": "count", "--seed": "seed",
                "--eval-every-steps": "every", "--max-steps": "pos", "--output": "targets",
                "--jobs": "jobs", "--threads": "jobs", "--executor": "executor",
                "--store": "new_store"},
    "demo": {"-o": "out_dir", "--jobs": "jobs", "--threads": "jobs", "--executor": "executor",
             "--store": "new_store"},
    "export": {"--tensorboard": "log_dir", "--benchmark": "id", "--store": "store"},
    "extrapolate": {"--method": "choice", "--store": "store"},
    "sensitivity": {"-w": "workload", "-a": "algorithm", "--lrs": "lrs", "--seeds": "count",
                    "--seed": "seed", "--max-steps": "pos", "--jobs": "jobs", "--threads": "jobs",
                    "--executor": "executor", "--store": "new_store", "--benchmark": "id",
                    "--plot": "writable", "--bootstrap": "count0"},
}  # fmt: skip

#: combinations that conflict or would be ignored, names the data lacks, commands misused
EXTRA = [
    [],
    ["frobnicate"],
    ["--bogus"],
    ["list"],
    ["list", "bogus"],
    ["list", "workloads", "--bogus"],
    ["run", "-w", "tiny_blobs"],
    ["run", "-w", "tiny_blobs", "-a", "tiny_sgd", "--max-steps", "5", "--store", "{new}"],
    [*RUN, "--text-file", "{text}"],
    [*RUN, "-w", "tiny_blobs:mlp", "--variant", "mlp"],
    [*RUN, "--set", "learning_rate=0.1", "--set", "learning_rate=0.2"],
    [*RUN, "--device", "cuda:999"],
    [*RUN, "--bogus"],
    [*RUN, "--nproc", "3"],  # 32 rows do not divide into 3 shards (or: more than the cores)
    ["show", "--store", "{db}", "1", "--limit", "3"],
    ["show", "--store", "{db}", "999"],
    ["show", "--store", "{db}", "1", "2"],
    ["bench", "--store", "{new}"],
    ["bench", "-w", "tiny_blobs", "--store", "{new}"],
    ["bench", "-a", "tiny_sgd", "--store", "{new}"],
    ["bench", "-w", "tiny_blobs,tiny_blobs", "-a", "tiny_sgd", "--store", "{new}"],
    ["bench", "-w", "tiny_blobs", "-a", "tiny_sgd", "-a", "tiny_sgd", "--store", "{new}"],
    [*BENCH, "--max-runtime", "5"],
    ["bench", "-w", "tiny_blobs", "-a", "tiny_sgd", "--max-steps", "5", "--store", "{new}"],
    [*BENCH, "--ruleset", "self", "--trials", "2"],
    ["bench", "--resume", "--trials", "2", "--store", "{db}"],
    ["bench", "--resume", "--seed", "1", "--store", "{db}"],
    ["bench", "--resume", "--max-steps", "5", "--store", "{db}"],
    ["bench", "--resume", "-w", "tiny_blobs", "-a", "tiny_sgd", "--store", "{db}"],
    [
        "bench",
        "--resume",
        "--benchmark",
        "1",
        "-w",
        "tiny_blobs",
        "-a",
        "tiny_sgd",
        "--store",
        "{db}",
    ],  # fmt: skip
    ["bench", "--benchmark", "1", "--studies", "3", "--store", "{db}"],
    ["bench", "--resume", "--store", "{missing}"],
    ["bench", "--resume", "--store", "{nobench}"],
    ["bench", "--benchmark", "99", "--store", "{db}"],
    ["score", "--times", "{csv_good}", "--store", "{db}"],
    ["score", "--times", "{csv_good}", "--benchmark", "1"],
    ["score", "--times", "{csv_good}", "--reference", "nope"],
    ["score", "--times", "{csv_good}", "--save-times", "{csv_good}"],
    ["score", "--times", "{csv_good}", "--tuning-cost"],
    ["score", "--store", "{db}", "--benchmark", "99"],
    ["score", "--store", "{nobench}"],
    ["report", "--store", "{db}", "--benchmark", "99", "-o", "{new_dir}"],
    ["report", "--store", "{nobench}", "-o", "{new_dir}"],
    ["targets", "-w", "tiny_blobs", "--max-steps", "5", "--store", "{new}"],
    ["targets", "-w", "tiny_blobs,tiny_blobs", "--store", "{new}"],
    ["targets", "--store", "{new}"],
    ["demo", "--json", "--store", "{new}"],
    ["show"],  # the default store (in the world's directory) does not exist
    ["score"],
    ["report"],
    ["bench", "--resume"],
    ["demo", "--store", "{new}", "extra"],
    ["export", "--store", "{db}"],
    ["export", "--mlflow", "sqlite:///{new}", "--tensorboard", "{new_dir}", "--store", "{db}"],
    ["export", "--tensorboard", "{new_dir}", "--benchmark", "99", "--store", "{db}"],
    ["export", "--mlflow", "sqlite:///{new}", "--benchmark", "1", "--store", "{nobench}"],
    ["export", "--tensorboard", "{new_dir}", "--store", "{missing}"],
    ["export", "--tensorboard", "{new_dir}"],
    *(["export", "--mlflow", value, "--store", "{db}"] for value in BAD["uri"]),
    ["extrapolate", "--store", "{db}"],
    ["extrapolate", "99", "--store", "{db}"],
    ["extrapolate", "1", "--store", "{db}"],  # its accuracy passes 1: no curve to predict
    [*BENCH, "--resume", "--early-stop", "lc-pfn"],
    # hp-dependent preconditions (Algorithm.check_hyperparameters): exit 2 before training,
    # the out-of-range warning of the same --set not printed beside the error
    *([*RUN[:2], workload, "-a", algorithm, *RUN[5:], "--set", setting] for workload, algorithm,
      setting in (
        ("digits_cnn", "sws", "lg_stage_depth=1"),  # no shared layer: cannot make depth 2
        ("charlm_gpt", "tleg", "lg_aux_depth=0"),  # a depth TLEG cannot produce
        ("mnist1d_mlp", "grow_net2net", "start_width=1.5"),  # grows past the architecture
        ("mnist1d_mlp", "grow_mixture", "grow_at=1.5"),
        ("mnist1d_mlp", "grow_net2net", "stages=20"),  # 20 growths in a 10-update budget
        ("mnist1d_mlp", "adapt", "wl_start=1"),  # a bit-width below 2
        ("mnist1d_mlp", "adapt+bf16", "wl_start=0"),
        ("mnist1d_mlp", "adapt", "max_lookback=4"),  # below min_lookback 25
        ("mnist1d_mlp", "gmp", "t_end_fraction=1.5"),
    )),
    [*RUN[:2], "mnist1d_mlp", "-a", "grow_net2net", *RUN[5:], "--set", "grow_at=0.9", "--set",
     "horizon=1.2"],  # the last growth at 0.9 x 1.2 of the schedule: after the budget
    # --search pbt: population, quantile, resampling, ready, checkpoints, flags without it
    [*BENCH, "--search", "pbt"],  # --trials 1: a population of 1
    [*BENCH, "--search", "pbt", "--population", "3"],
    *([*BENCH, "--search", "pbt", "--population", "4", "--pbt-quantile", q]
      for q in ("0", "-0.1", "0.6", "nan")),
    *([*BENCH, "--search", "pbt", "--population", "4", "--pbt-resample", p]
      for p in ("-0.1", "1.5", "inf")),
    [*BENCH, "--search", "pbt", "--population", "4", "--pbt-ready", "0"],
    [*BENCH, "--search", "pbt", "--population", "4"],  # tiny_sgd has no checkpoints
    [*BENCH, "--search", "pbt", "--population", "4", "-a", "adamw", "--early-stop", "lc-pfn"],
    [*BENCH, "--search", "pbt", "--population", "4", "--ruleset", "self"],
    [*BENCH, "--population", "4"],
    [*BENCH, "--search", "asha", "--pbt-ready", "5"],
    # trainlab sensitivity: no lr to sweep, missing options, resuming what is not a sweep
    [*SENSITIVITY, "-a", "tiny_selftuned"],
    ["sensitivity", "-w", "tiny_blobs", "-a", "tiny_sgd", "--store", "{new}"],
    ["sensitivity", "-a", "tiny_sgd", "--lrs", "1e-3:1e-1:3", "--store", "{new}"],
    ["sensitivity", "-w", "tiny_blobs", "--lrs", "1e-3:1e-1:3", "--store", "{new}"],
    ["sensitivity", "-w", "tiny_blobs", "-a", "tiny_sgd,tiny_sgd", "--lrs", "1e-3:1e-1:3",
     "--store", "{new}"],
    ["sensitivity", "--resume", "--store", "{db}"],
    ["sensitivity", "--benchmark", "1", "--store", "{db}"],
    ["sensitivity", "--resume", "--store", "{missing}"],
    ["sensitivity", "--resume", "--lrs", "1e-3:1e-1:3", "--store", "{db}"],
    ["sensitivity", "--resume", "--store", "{nobench}"],
]


def _cases():
    for command, options in OPTIONS.items():
        for option, kind in options.items():
            for value in BAD[kind]:
                if option == "ID":
                    args = [*BASES[command], value]
                elif option.startswith("--"):
                    args = [*BASES[command], f"{option}={value}"]
                else:
                    args = [*BASES[command], option, value]
                yield pytest.param(args, id=f"{command} {option} {value!r}")
    for args in EXTRA:
        yield pytest.param(args, id=" ".join(args) or "(nothing)")


CASES = list(_cases())


@pytest.fixture(scope="module")
def world(tmp_path_factory, make_store):
    """Files for the cases to point at; none may change."""
    root = tmp_path_factory.mktemp("world")
    (root / "dir").mkdir()
    (root / "text").write_text("not a store\n")
    (root / "empty").write_bytes(b"")
    (root / "json_list").write_text("[1, 2]\n")
    make_store(root / "db")
    Store(root / "nobench").close()
    header = "algorithm,workload,study,trial,time\n"
    csvs = {
        "csv_good": header + "A,w,0,0,1.5\nB,w,0,0,inf\n",
        "csv_header": header,
        "csv_dup": header + "A,w,0,0,1.5\nA,w,0,0,2\n",
        "csv_zero": header + "A,w,0,0,0\nB,w,0,0,2\n",
        "csv_nan": header + "A,w,0,0,nan\n",
        "csv_neg": header + "A,w,0,0,-1\n",
        "csv_columns": "algorithm,workload,time\nA,w,1\n",
        "csv_fields": header + "A,w,0,0\n",
    }
    for name, text in csvs.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "csv_binary").write_bytes(b"\xff\xfe\x00garbage")
    names = ["dir", "text", "empty", "json_list", "db", "nobench", *csvs, "csv_binary"]
    paths = {name: str(root / name) for name in names}
    paths.update(
        missing=str(root / "missing"), new=str(root / "new.db"),
        new_dir=str(root / "report"), new_json=str(root / "targets.json"),
    )  # fmt: skip
    return root, paths


def snapshot(root):
    """Every file under ``root`` with its bytes, and the store's trial count."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            files[os.path.join(dirpath, name)] = "<dir>"
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files[path] = f.read()
    return files


def test_there_are_enough_cases():
    assert len(CASES) >= 150


@pytest.mark.parametrize("args", CASES)
def test_bad_input(world, cli, args, monkeypatch):
    root, paths = world
    monkeypatch.chdir(root)  # default paths (store, report) land in the world, if anywhere
    args = [a.format(**paths) for a in args]
    before = snapshot(root)
    with Store(paths["db"]) as store:
        trials = len(store.trials())
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert err.startswith("trainlab: error: ") and err.count("trainlab: error:") == 1, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert out == ""
    assert snapshot(root) == before
    with Store(paths["db"]) as store:
        assert len(store.trials()) == trials


def test_bad_input_json_file_stays(world):
    """The targets file cases never rewrote the JSON list."""
    root, _ = world
    assert json.loads((root / "json_list").read_text()) == [1, 2]
