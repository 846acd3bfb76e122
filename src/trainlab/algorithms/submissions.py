"""``-a algoperf:PATH/submission.py``: AlgoPerf submissions, resolved by name.

The resolver lives here, under ``trainlab.algorithms``, because spawned benchmark workers
import this package (``registry.load_all()``) and must resolve the stored names too. The
loader and the workload adapter are in :mod:`trainlab.algoperf`.
"""

from __future__ import annotations

from trainlab.algoperf import names
from trainlab.algoperf.algorithm import SubmissionAlgorithm
from trainlab.algoperf.search_space import read_hparams, read_search_space
from trainlab.registry import register_resolver
from trainlab.spec import Algorithm


def resolve_submission(name: str) -> Algorithm | None:
    """``algoperf:PATH[?space=FILE|?hparams=FILE]`` -> a :class:`SubmissionAlgorithm` named by
    its absolute paths; other names -> None. Bad files raise a one-line ``TrainlabError``."""
    if not names.is_submission(name):
        return None
    path, key, file = names.parse(name)
    space = None
    if key == "space":
        space = read_search_space(file)
    elif key == "hparams":
        space = read_hparams(file)
    return SubmissionAlgorithm(path, names.make(path, key, file), space)


register_resolver(resolve_submission)
