"""Run AlgoPerf submissions (``submission.py`` files written for MLCommons AlgoPerf's PyTorch
API, v0.5 or v0.6) unchanged on trainlab's workloads under trainlab's timing rules.

* :mod:`~trainlab.algoperf.spec`, :mod:`~trainlab.algoperf.pytorch_utils`: what a submission
  imports from ``algoperf``/``algorithmic_efficiency`` when the real package is absent;
  :mod:`~trainlab.algoperf.compat` provides them during its import only.
* :mod:`~trainlab.algoperf.loader`: import a file, one-line errors for bad ones.
* :mod:`~trainlab.algoperf.workload`: the AlgoPerf workload API over a trainlab workload.
* :mod:`~trainlab.algoperf.algorithm`: a submission as a trainlab ``Algorithm``.
* :mod:`~trainlab.algoperf.search_space`, :mod:`~trainlab.algoperf.names`: AlgoPerf's
  search-space JSON and the ``algoperf:PATH?space=FILE`` names (both torch-free).

From the command line: ``trainlab run -w digits_cnn -a algoperf:path/submission.py --hparams
hp.json`` or ``trainlab bench -w digits_cnn -a algoperf:path/submission.py
--tuning-search-space space.json``. In Python::

    from trainlab.registry import get_algorithm, get_workload
    from trainlab.bench.runner import run_trial

    algorithm = get_algorithm("algoperf:/abs/submission.py?space=/abs/space.json")
    result = run_trial(get_workload("digits_cnn"), algorithm, {"learning_rate": 1e-3},
                       eval_every_steps=20, max_steps=200)

This package's ``__init__`` imports nothing heavy: the command line's parser reads names and
search spaces through it without importing torch.
"""
