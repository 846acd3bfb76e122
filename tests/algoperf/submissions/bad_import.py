"""Broken on purpose: imports a module that is not installed."""

import trainlab_no_such_module  # noqa: F401


def get_batch_size(workload_name):
    return 32
