"""How far one 500-digit pool's figure swings: numbers read right, block by block of the MNIST test set.

    python -m benchmarks.numbers_blocks [--count 100] [--seed 1] [--gap separated] [--layout drawn] [--threads N]

The committed held-back sample is 500 MNIST test digits (500-999), drawn again and again, so a few
ambiguous digits in it can decide its figure. This reads numbers (tests/number_gen.py, as
numbers_bench.py does) from each 500-digit block of test digits 500-9,999 that no choice was made on
(the committed block first, then the 18 blocks of FRESH; needs the full MNIST files), and prints each
block's sequence accuracy and how many of its numbers hold a digit the classifier misreads even alone;
then all blocks pooled, with a 95% Wilson interval, and how many blocks reach the target.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from benchmarks.numbers_bench import TARGETS, Cell, accuracy
from mnist.predict import get_number_classifier
from mnist.reader import get_reader
from mnist.synth import GAP_TYPES, LAYOUTS, STYLES
from tests.number_gen import full_test_set

BLOCKS = [range(start, start + 500) for start in range(500, 10_000, 500)]


def wilson(right: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval for a proportion (Wilson score): honest near 100%, where the normal one is not."""
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100, help="numbers per style and block (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gap", choices=GAP_TYPES, default="separated")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="drawn")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pool = full_test_set()
    if pool is None:
        raise SystemExit("needs the full MNIST files: set MNIST_DATA_DIR")
    print(
        f"classifier {get_number_classifier().model_version}, line reader {get_reader().version}; {args.gap} numbers "
        f"({args.layout}), {args.count * len(STYLES)} per 500-digit block of MNIST test digits, seed {args.seed}"
    )
    print(f"{'test digits':<12} {'numbers':>7} {'sequence':>9} {'hold an ambiguous digit':>24}")
    totals, rates = Cell(), []
    for block in BLOCKS:
        results = accuracy(args.count, args.seed, (block, pool), get_reader(), args.layout, (args.gap,))
        cell = sum(results.values(), Cell())
        totals, rate = totals + cell, cell.right / cell.numbers
        rates.append(rate)
        name = f"{block.start}-{block.stop - 1}"
        print(f"{name:<12} {cell.numbers:>7} {rate:>9.1%} {cell.hard:>24}", flush=True)
    low, high = wilson(totals.right, totals.numbers)
    target = TARGETS[args.gap]
    print(
        f"all blocks: {totals.right}/{totals.numbers} = {totals.right / totals.numbers:.1%} "
        f"(95% interval {low:.1%}-{high:.1%}); blocks: min {min(rates):.1%}, median {np.median(rates):.1%}, "
        f"max {max(rates):.1%}; {sum(r >= target for r in rates)} of {len(rates)} reach {target:.0%}"
    )


if __name__ == "__main__":
    main()
