"""Train the LC-PFN whose weights trainlab ships (src/trainlab/curves/lcpfn_weights.pt).

    PYTHONPATH=src python tools/train_lcpfn.py --steps 6000 --batch-size 64 --seed 0

Seeded (numpy and torch); one torch thread by default (the machine is shared). Prints the
training and validation NLL (validation: the final point of 256 fixed prior curves given the
first 10, 25 and 50) every 200 steps, and saves the weights in half precision (~0.4 MB).
"""

from __future__ import annotations

import argparse
import time

import torch

from trainlab.curves.lcpfn import WEIGHTS, save_model
from trainlab.curves.pfn_training import train_pfn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(WEIGHTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(step: int, train: float, valid: float) -> None:
        elapsed = time.perf_counter() - start
        print(f"step {step:6d}  train nll {train:8.4f}  valid nll {valid:8.4f}  {elapsed:7.1f} s",
              flush=True)  # fmt: skip

    model, record = train_pfn(args.steps, args.batch_size, args.seed, args.lr, log=log)
    meta = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
            "seed": args.seed, "valid_nll": record["valid_nll"][-1]}  # fmt: skip
    save_model(model, args.out, meta)
    print(f"saved {args.out}: {meta}")


if __name__ == "__main__":
    main()
