"""Whether two training runs logged the same metrics: compares the `metrics.jsonl` of run
folders line by line, leaving out the wall-clock keys (`time/*`, `throughput/*`, `queue/*`).

Usage: python3 tools/compare_runs.py RUN_A RUN_B [RUN_A2 RUN_B2 ...]
Prints IDENTICAL or the first differing keys for each pair; exits 1 when a pair differs.
"""

import json
import re
import sys

WALL_CLOCK = re.compile(r"^(time/|throughput/|queue/)")


def records(run_dir):
    with open(f"{run_dir}/metrics.jsonl") as f:
        return [
            {k: v for k, v in json.loads(line).items() if not WALL_CLOCK.search(k)}
            for line in f
            if line.strip()
        ]


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__)
        return 2
    differ = False
    for a, b in zip(argv[::2], argv[1::2]):
        ra, rb = records(a), records(b)
        if ra == rb:
            print(f"IDENTICAL {a} {b} ({len(ra)} lines, {sum(len(r) for r in ra)} values)")
            continue
        differ = True
        print(f"DIFFER {a} {b}")
        if len(ra) != len(rb):
            print(f"  {len(ra)} lines against {len(rb)}")
        for i, (x, y) in enumerate(zip(ra, rb)):
            for k in sorted(set(x) | set(y)):
                if x.get(k) != y.get(k):
                    print(f"  line {i + 1} {k}: {x.get(k)} against {y.get(k)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
