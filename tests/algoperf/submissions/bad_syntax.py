"""Broken on purpose: a syntax error on line 3."""

def get_batch_size(workload_name)
    return 32
