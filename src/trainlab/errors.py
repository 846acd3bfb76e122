"""The errors and warnings a user can cause; the command line prints them as one line."""

from __future__ import annotations


class TrainlabError(Exception):
    """An error the user caused (bad name, bad value, unreadable file): the CLI prints one line
    and exits with code 2."""


class StoreError(TrainlabError):
    """The results store cannot be used: not a trainlab store, of another schema version,
    damaged, full, read-only for a write, or unreachable. Never an algorithm's failure: the
    trial it interrupts is left to be rerun."""


class ClaimLost(StoreError):
    """A trial this process was running was taken over by another process (its heartbeat had
    stopped for longer than the store's ``stale_after``): its results are no longer written."""


class HyperparameterError(TrainlabError, ValueError):
    """A hyperparameter is unknown, missing, or out of its allowed range."""


class OutOfRangeWarning(UserWarning):
    """A hyperparameter set for a single run lies outside its tuning search space."""
