"""``trainlab score``: performance profiles and scores of a stored benchmark or a times CSV."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.spec import TrainlabError

NAME = "score"
HELP = "performance profiles and scores of a benchmark"


def times_csv(text: str) -> tuple[Path, list]:
    """A times file, read and checked whole as the option is parsed: a UTF-8 CSV (a byte-order
    mark is fine) with the scoring columns, each (algorithm, workload, study, trial) once, every
    time > 0 or inf. Returns the path and its :class:`TimeRecord` rows."""
    from trainlab.bench.scoring import CSV_COLUMNS, TimeRecord

    path = argtypes.readable_file(text)

    def bad(line: int | None, message: str) -> argtypes.BadValue:
        return argtypes.BadValue(f"{path}{'' if line is None else f':{line}'}: {message}")

    records, seen = [], {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise bad(None, f"empty file (expected a header {','.join(CSV_COLUMNS)})")
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise bad(1, f"missing column(s) {', '.join(missing)} in the header")
            col = {c: header.index(c) for c in CSV_COLUMNS}
            for line, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise bad(line, f"expected {len(header)} fields, got {len(row)}")
                cells = {c: row[i].strip() for c, i in col.items()}
                if not cells["algorithm"] or not cells["workload"]:
                    raise bad(line, "empty algorithm or workload")
                try:
                    study, trial = int(cells["study"]), int(cells["trial"])
                except ValueError:
                    raise bad(line, "study and trial must be integers") from None
                try:
                    time = float(cells["time"])
                except ValueError:
                    raise bad(
                        line, f"time {cells['time']!r} is not a number (use inf for a miss)"
                    ) from None
                if study < 0 or trial < 0:
                    raise bad(line, "study and trial must be >= 0")
                if not time > 0:  # also nan
                    raise bad(line, f"time must be > 0 or inf (a miss), got {cells['time']}")
                key = (cells["algorithm"], cells["workload"], study, trial)
                if key in seen:
                    raise bad(line, f"duplicate row (same algorithm, workload, study and trial "
                                    f"as line {seen[key]})")  # fmt: skip
                seen[key] = line
                records.append(TimeRecord(*key, time))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise bad(None, f"not a readable UTF-8 CSV file ({exc})") from None
    except OSError as exc:
        raise bad(None, f"cannot read: {exc.strerror or exc}") from None
    if not records:
        raise bad(None, "no rows")
    return path, records


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--times", type=times_csv, default=None, metavar="FILE.csv",
                   help="score a CSV (algorithm,workload,study,trial,time; inf for a miss) "
                        "instead of a store")  # fmt: skip
    p.add_argument("--benchmark", type=argtypes.trial_id, default=None, metavar="ID",
                   help="default: the latest")  # fmt: skip
    common.add_by(p)
    p.add_argument("--reference", type=argtypes.word, default=None, metavar="ALGORITHM",
                   help="speedups over this algorithm (default: nadamw)")  # fmt: skip
    p.add_argument(
        "--r-max",
        type=argtypes.real(1.0, 1e6),
        default=4.0,
        help="upper end of the profile integral (finite, > 1; default 4)",
    )
    p.add_argument("--save-times", type=argtypes.writable_file, default=None, metavar="FILE.csv",
                   help="also write the per-trial times as CSV")  # fmt: skip
    common.add_store(p, must_exist=True, default=False)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.scoring import compute_scores, scores_from_store, write_times_csv
    from trainlab.bench.store import DEFAULT_STORE

    if args.times is not None:
        for name in common.given(args, "benchmark", "store"):
            raise TrainlabError(f"{common.flag(name)} applies to a results store: --times "
                                "scores the file instead; give one of them")  # fmt: skip
        path, records = args.times
        if args.save_times is not None and args.save_times.resolve() == path.resolve():
            raise TrainlabError("--save-times would overwrite the --times file")
        if args.reference is not None and args.reference not in {r.algorithm for r in records}:
            raise TrainlabError(f"--reference: no algorithm {args.reference!r} in {path}")
        result = compute_scores(records, r_max=args.r_max, reference=args.reference, by=args.by)
        source = str(path)
    else:
        store_path = args.store or Path(DEFAULT_STORE)
        if not store_path.is_file():
            raise TrainlabError(f"--store: no results store at {store_path} (run `trainlab bench`)")
        with common.open_existing_store(store_path) as store:
            bench = common.benchmark_record(store, args.benchmark)
            names = {t["algorithm"] for t in store.trials(benchmark_id=bench["id"])}
            if args.reference is not None and args.reference not in names:
                raise TrainlabError(
                    f"--reference: no algorithm {args.reference!r} in benchmark {bench['id']} "
                    f"(algorithms: {', '.join(sorted(names)) or 'none'})"
                )
            result, bench, records = scores_from_store(
                store, bench["id"], by=args.by, reference=args.reference, r_max=args.r_max
            )
        source = f"{store_path}, benchmark {bench['id']}"
    if args.save_times is not None:
        try:
            write_times_csv(records, args.save_times)
        except OSError as exc:
            raise TrainlabError(f"cannot write {args.save_times}: {exc.strerror or exc}") from None
    if args.json:
        common.print_json({**result.to_json(), "source": source})
        return 0
    from trainlab.cli import render

    con = render.console()
    render.print_scores(result, con)
    render.plain(con, f"source: {source}")
    return 0
