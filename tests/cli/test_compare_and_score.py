"""``compare A B`` and ``score``: intervals, the paired test and the verdict as printed, every
``--by`` measure, and the one-line errors."""

import json

from trainlab.bench.scoring import MEASURES
from trainlab.cli.common import SCORE_BY


def test_score_by_choices_are_the_measures():
    assert SCORE_BY == tuple(MEASURES)


def test_constants_written_out_for_a_light_parser_match_their_sources():
    from trainlab.algorithms.baselines import BASELINES
    from trainlab.bench.store import DEFAULT_STORE, STALE_AFTER
    from trainlab.cli import common, demo

    assert demo.DEMO_ALGORITHMS == BASELINES
    assert (common.STALE_AFTER, common.DEFAULT_STORE) == (STALE_AFTER, DEFAULT_STORE)


def test_compare_prints_speedup_interval_p_and_verdict(cli, store):
    # the store: tiny_sgd reaches at 0.3 s, tiny_selftuned at 0.4 s, in each of two studies
    code, out, err = cli("compare", "tiny_sgd", "tiny_selftuned", "--store", store)
    assert code == 0, err
    assert "1.33x" in out and "tiny_sgd vs tiny_selftuned" in out
    # two paired studies cannot reach p < 0.01 (the smallest one-sided p is 1/4)
    assert "inconclusive: 2 pairs cannot reach p < 0.01" in out and "p = 0.25" in out
    code, out, _ = cli("compare", "tiny_sgd", "tiny_selftuned", "--store", store, "--json",
                       "--by", "steps")  # fmt: skip
    doc = json.loads(out)
    assert doc["speedup"] == 20 / 15 and doc["pairs"] == 2 and doc["by"] == "steps"
    assert doc["verdict"].startswith("inconclusive") and doc["benchmark"] == 1


def test_compare_errors_are_one_line(cli, store):
    for args, words in [
        (("tiny_sgd", "nope"), "B: no algorithm 'nope' in benchmark 1"),
        (("tiny_sgd", "tiny_sgd"), "two different algorithms"),
        (("tiny_sgd", "tiny_selftuned", "--by", "cpu-time"), "recorded before"),
    ]:
        code, out, err = cli("compare", *args, "--store", store)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_score_prints_intervals_or_says_why_not(cli, store):
    code, out, err = cli("score", "--store", store)
    assert code == 0, err
    assert "[95 % interval]" in out and "1.00x [1.00, 1.00]" in out
    code, out, _ = cli("score", "--store", store, "--bootstrap", "0")
    assert "n/a" in out
    code, out, _ = cli("score", "--store", store, "--json")
    doc = json.loads(out)
    assert doc["score_intervals"]["tiny_sgd"] == [1.0, 1.0]
