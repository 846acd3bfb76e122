"""A benchmark killed with SIGKILL mid-way resumes: every planned trial appears exactly once, the
finished ones are not rerun, the interrupted ones are rerun from scratch, and the pool workers of
the killed process do not outlive it."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

N_TRIALS, N_STUDIES, ALGORITHMS = 4, 2, ("adamw", "nadamw")
TOTAL = N_TRIALS * N_STUDIES * len(ALGORITHMS)


def bench(db: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "trainlab", "bench", "--store", str(db), "--quiet", "--jobs", "2",
        *extra,
    ]  # fmt: skip


def rows(db: Path) -> list[dict]:
    if not db.exists():  # (connecting would create an empty file, which is no store)
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM trials ORDER BY id")]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def evaluation_steps(db: Path, trial_id: int) -> list[int]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        q = "SELECT step FROM evaluations WHERE trial_id = ? ORDER BY step"
        return [r[0] for r in conn.execute(q, (trial_id,))]
    finally:
        conn.close()


def session_members(sid: int) -> list[int]:
    """Processes still in the session the killed benchmark led (its pool workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid and fields[0] != "Z":  # session id; not a zombie
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_sigkill_mid_benchmark_then_resume(tmp_path):
    db = tmp_path / "runs.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = bench(
        db, "-w", "digits_cnn", "-a", ",".join(ALGORITHMS), "--trials", str(N_TRIALS),
        "--studies", str(N_STUDIES), "--eval-every-steps", "5", "--max-steps", "10",
        "--targets", "class",
    )  # fmt: skip
    proc = subprocess.Popen(
        first, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while True:
        done = [r for r in rows(db) if r["status"] not in ("pending", "running")]
        if len(done) >= 2 or proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"benchmark ended before the kill: {proc.stderr.read()!r}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_members(proc.pid) == [], "pool workers outlived the killed benchmark"

    before = {r["id"]: r for r in rows(db)}
    assert len(before) == TOTAL  # the whole plan was written up front
    finished = {i: r for i, r in before.items() if r["status"] not in ("pending", "running")}
    unfinished = set(before) - set(finished)
    assert finished and unfinished

    resume = subprocess.run(bench(db, "--resume"), env=env, capture_output=True, text=True)
    assert resume.returncode == 0, resume.stderr
    after = {r["id"]: r for r in rows(db)}
    assert after.keys() == before.keys()
    slots = {(r["algorithm"], r["workload"], r["study"], r["trial_index"]) for r in after.values()}
    assert len(slots) == TOTAL  # every planned trial exactly once
    for trial_id, r in after.items():
        assert r["status"] == "missed", (trial_id, r["status"], r["error"])  # 10 steps: far off
        assert evaluation_steps(db, trial_id) == [5, 10]  # no stale or duplicate evaluations
        if trial_id in finished:  # not rerun
            old = finished[trial_id]
            assert (r["started"], r["finished"]) == (old["started"], old["finished"])
        else:
            assert r["finished"] is not None and r["finished"] > max(
                f["finished"] for f in finished.values()
            )
