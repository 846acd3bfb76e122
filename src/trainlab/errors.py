"""The errors and warnings a user can cause; the command line prints them as one line."""

from __future__ import annotations


class TrainlabError(Exception):
    """An error the user caused (bad name, bad value, unreadable file): the CLI prints one line
    and exits with code 2."""


class HyperparameterError(TrainlabError, ValueError):
    """A hyperparameter is unknown, missing, or out of its allowed range."""


class OutOfRangeWarning(UserWarning):
    """A hyperparameter set for a single run lies outside its tuning search space."""
