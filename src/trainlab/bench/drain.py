"""Running a planned benchmark to its end, shared with other processes.

:func:`drain` claims the benchmark's trials one at a time as the executor's slots free up
(:meth:`~trainlab.bench.store.Store.claim_next`), runs them, and, when nothing is left to claim,
waits while other live processes (``bench``, ``bench --resume``, ``trainlab worker``, on any
machine) hold the rest; the trials of a process that died are given back (at once on this host,
after ``stale_after`` elsewhere) and claimed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from trainlab.bench.store import Store
from trainlab.errors import TrainlabError
from trainlab.spec import UNFINISHED

#: seconds between looks at trials other processes hold, once nothing is left to claim
WAIT_POLL = 1.0


def drain(
    store: Store,
    benchmark_id: int,
    executor: Any,
    on_done: Callable[[int, dict[str, Any]], None],
    on_tick: Callable[[], None] | None = None,
    claim: Callable[[], int | None] | None = None,
) -> int:
    """Run the benchmark's trials until every one is finished: claim and run what can be
    claimed, then wait while other live processes hold the rest. Returns how many trials this
    process ran.

    ``claim`` claims the next trial (default: :meth:`Store.claim_next`); a searcher that adds
    trials as results come in (ASHA's promotions) passes its own, and the benchmark ends only
    when every trial is finished and ``claim`` has nothing more."""
    ran = 0
    claim = claim or (lambda: store.claim_next(benchmark_id))
    claimed: list[int] = []  # a trial claimed while looking for more work, run first

    def next_trial() -> int | None:
        return claimed.pop() if claimed else claim()

    def done(trial_id: int, outcome: dict[str, Any]) -> None:
        nonlocal ran
        ran += 1
        on_done(trial_id, outcome)

    idle = 0
    while True:
        store.reap_dead_owners()
        before = ran
        executor.run(next_trial, done, on_tick)
        left = [r for r in store.trials(benchmark_id=benchmark_id) if r["status"] in UNFINISHED]
        if not left:
            found = claim()  # the trials just finished may have made new work (a promotion)
            if found is None:
                return ran
            claimed.append(found)
            continue
        if store.held_by_others(benchmark_id):
            idle = 0
            if on_tick is not None:
                on_tick()
            time.sleep(WAIT_POLL)
            continue
        idle = 0 if ran > before else idle + 1  # what is left became claimable: go again
        if idle > 2:
            raise TrainlabError(f"{len(left)} trials of benchmark {benchmark_id} are unfinished "
                                "but cannot be claimed")  # fmt: skip
