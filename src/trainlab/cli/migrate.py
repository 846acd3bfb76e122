"""``trainlab migrate``: upgrade a results store written by an earlier trainlab, explicitly.

Opening a store never changes its schema behind the user's back: a store of an older schema is
refused with a pointer here. This copies it first (``FILE.schemaN-TIMESTAMP.bak`` beside a
SQLite store) and then upgrades it in one transaction.
"""

from __future__ import annotations

import argparse

from trainlab.cli import argtypes

NAME = "migrate"
HELP = "upgrade a results store written by an earlier trainlab (a backup copy is kept)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=argtypes.existing_store, required=True, metavar="FILE.db|URL",
                   help="the store to upgrade")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.store_backends import Location, migrate

    old, new, backup = migrate(Location.parse(args.store))
    if old == new:
        print(f"{args.store} already has schema {new}: nothing to do")
    else:
        print(f"{args.store}: schema {old} -> {new}; the old store is kept as {backup}")
    return 0
