"""``--text-file``: a user's own text trains end to end, whatever its line endings and script,
and every registered algorithm either trains on it or refuses before anything is stored."""

import json

import pytest

from trainlab.bench.runner import run_trial
from trainlab.cli import main
from trainlab.registry import algorithm_names, get_algorithm, get_workload
from trainlab.spec import HyperparameterError, TrainlabError

SENTENCE = "Ἐν ἀρχῇ ἦν ὁ λόγος — «Straße», naïve café; 東京 🚀 the quick brown fox.\r\n"


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "book.txt"
    # a byte-order mark, Windows and old-Mac line endings, several scripts and an emoji
    body = SENTENCE * 60 + "last line\rwith a lone CR\n"
    path.write_bytes("\ufeff".encode() + body.encode("utf-8"))
    return path


def test_text_workload_reads_any_unicode_and_line_ending(text_file):
    w = get_workload("charlm_gpt", text_file=str(text_file))
    assert not w.generative  # nothing fresh to generate from a user's file
    assert "\r" not in w.alphabet and "\ufeff" not in w.alphabet
    assert {"ῇ", "東", "🚀", "\n"} <= set(w.alphabet)
    assert w.describe()["alphabet_size"] == len(w.alphabet)


def test_cli_run_on_a_text_file(text_file, tmp_path, capsys):
    code = main(["run", "-w", "charlm_gpt", "-a", "adamw", "--text-file", str(text_file),
                 "--eval-every-steps", "2", "--max-steps", "4", "--targets", "class",
                 "--store", str(tmp_path / "s.db"), "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] in ("reached", "missed") and out["steps"] == 4


def test_too_short_a_text_is_one_line(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("too short\n")
    code = main(["run", "-w", "charlm_gpt", "-a", "adamw", "--text-file", str(short),
                 "--store", str(tmp_path / "s.db")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "too short" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()


@pytest.mark.slow
def test_every_algorithm_trains_on_a_text_file_or_refuses_up_front(text_file):
    w = get_workload("charlm_gpt", text_file=str(text_file))
    for name in algorithm_names():
        algorithm = get_algorithm(name)
        if not type(algorithm).__module__.startswith("trainlab."):
            continue  # the test fakes (one crashes on purpose)
        try:
            algorithm.check_workload(w)
        except TrainlabError as exc:
            assert name in str(exc) or w.name in str(exc)
            continue
        try:
            r = run_trial(w, algorithm, eval_every_steps=2, max_steps=4, count_flops=False)
        except HyperparameterError as exc:  # refused before training: a growth past 4 steps
            assert name in str(exc) and "budget" in str(exc)
            continue
        assert r.status != "failed", f"{name}: {r.error}"
