"""Trial throughput of ``trainlab worker`` processes: one worker against two, on one store.

The same benchmark is planned twice (``bench --plan-only``) in two fresh stores, in step mode so
every trial does the same work in both; then one ``trainlab worker`` drains the first store and
two workers, started together, drain the second. Every worker runs one trial at a time with one
torch thread (two intra-op threads per trial on a shared 2-core VM are erratic; see
``parallel.py``). Printed: trials per second over the span of the trials (first start to last
finish) and end to end (process start-up included), and their ratios. Goal on 2 cores: two
workers >= 1.8x the throughput of one.

    python benchmarks/workers.py [--store-dir DIR | --postgres URL1,URL2] [--trials 6]
                                 [--max-steps 600] [--workload mnist1d_mlp]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trainlab.bench.store import Store


def trainlab(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "trainlab.cli", *args], env=env,
                            stdout=subprocess.DEVNULL)  # fmt: skip


def measure(store: str, plan: list[str], workers: int) -> dict[str, float]:
    if trainlab("bench", *plan, "--plan-only", "--store", store).wait() != 0:
        raise SystemExit("planning failed")
    start = time.perf_counter()
    procs = [trainlab("worker", "--store", store, "--jobs", "1", "--threads", "1", "--quiet")
             for _ in range(workers)]  # fmt: skip
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a worker failed")
    wall = time.perf_counter() - start
    with Store(store, readonly=True) as s:
        trials = s.trials()
    span = max(t["finished"] for t in trials) - min(t["started"] for t in trials)
    counted = len(trials)
    return {"trials": counted, "span_rate": counted / span, "wall_rate": counted / wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="mnist1d_mlp")
    p.add_argument("--trials", type=int, default=6, help="Halton points (x 2 algorithms)")
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--store-dir", default=None, help="where the two SQLite stores go")
    p.add_argument("--postgres", default=None, help="two empty PostgreSQL URLs, comma-separated")
    a = p.parse_args()
    plan = ["-w", a.workload, "-a", "nadamw,heavyball", "--trials", str(a.trials), "--studies",
            "1", "--eval-every-steps", str(max(1, a.max_steps // 10)), "--max-steps",
            str(a.max_steps), "--targets", "class"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.store_dir or tmp)
        stores = (a.postgres.split(",") if a.postgres
                  else [str(root / "one.db"), str(root / "two.db")])  # fmt: skip
        one = measure(stores[0], plan, 1)
        two = measure(stores[1], plan, 2)
    print(f"{one['trials']} trials of {a.workload}, {a.max_steps} steps each, one thread each")
    for name, r in (("1 worker ", one), ("2 workers", two)):
        print(f"{name}: {r['span_rate']:.3f} trials/s over the trials' span, "
              f"{r['wall_rate']:.3f} end to end")  # fmt: skip
    print(f"ratio 2/1: {two['span_rate'] / one['span_rate']:.2f}x over the span "
          f"(goal >= 1.8 on 2 cores), {two['wall_rate'] / one['wall_rate']:.2f}x end to end")


if __name__ == "__main__":
    main()
