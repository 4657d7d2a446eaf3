"""Atlas load times: cold build of every dataset vs a warm load from the cache.

Each measurement runs in a fresh Python process (so nothing is reused in memory) against a
temporary cache folder. Prints the median of ``--repeat`` runs, the warm/cold ratio and the
peak resident memory of each process; ``--out`` also writes them as JSON.

    python benchmarks/atlas_load.py [--repeat 3] [--out FILE.json] [--smoke]

``--smoke`` is the same run once (one cold and one warm process): a check that it works.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, time
t0 = time.perf_counter()
import digiworm
t1 = time.perf_counter()
atlas = digiworm.atlas.load()
events = atlas.load_all()
t2 = time.perf_counter()
print(json.dumps({
    "import_s": t1 - t0,
    "load_s": t2 - t1,
    "statuses": sorted({e.status for e in events}),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _run(cache: str) -> dict:
    env = dict(os.environ, DIGIWORM_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=None, help="fresh processes (3; smoke 1)")
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON here")
    parser.add_argument("--smoke", action="store_true", help="one cold and one warm process")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.smoke else 3)
    cold, warm = [], []
    for _ in range(repeat):
        cache = tempfile.mkdtemp(prefix="digiworm-bench-")
        try:
            cold.append(_run(cache))
            warm.append(_run(cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    assert all(r["statuses"] == ["built"] for r in cold), cold
    assert all(r["statuses"] == ["hit"] for r in warm), warm
    c = statistics.median(r["load_s"] for r in cold)
    w = statistics.median(r["load_s"] for r in warm)
    imp = statistics.median(r["import_s"] for r in warm)
    n_datasets = len(__import__("digiworm").atlas.DATASETS)
    print(f"digiworm atlas, all {n_datasets} datasets, median of {repeat} fresh processes")
    print(f"  import digiworm       {imp:6.2f} s")
    print(
        f"  cold build (parse)    {c:6.2f} s   goal <= 30 s   peak RSS "
        f"{max(r['peak_rss_mb'] for r in cold):.0f} MB"
    )
    print(
        f"  warm load (cache)     {w:6.2f} s   goal <= 1 s    peak RSS "
        f"{max(r['peak_rss_mb'] for r in warm):.0f} MB"
    )
    print(f"  warm / cold ratio     {w / c:6.3f}")
    if args.out is not None:
        from digiworm._io import atomic_write_json

        atomic_write_json(
            args.out,
            {
                "benchmark": "atlas_load",
                "smoke": args.smoke,
                "datasets": n_datasets,
                "repeat": repeat,
                "import_s": imp,
                "cold_load_s": c,
                "warm_load_s": w,
                "ratio_warm_over_cold": w / c,
                "peak_rss_mb": {
                    "cold": max(r["peak_rss_mb"] for r in cold),
                    "warm": max(r["peak_rss_mb"] for r in warm),
                },
            },
        )
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
