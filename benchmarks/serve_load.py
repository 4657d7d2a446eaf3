"""The explorer under load: response time of a typical request and 50 concurrent experiments.

Starts ``digiworm serve`` in a subprocess on a free localhost port, warms it up (the first
request compiles the model), then

1. times 20 typical single-stimulation requests one after another (graded network, 30 s
   simulated, the measured response and its score included);
2. fires ``--concurrent`` (default 50) different stimulation requests at once from threads and
   checks every answer: the neuron a request stimulated is the one whose ΔF/F rises most;
3. reads the server's resident memory (VmRSS, /proc) before and after the burst.

    python benchmarks/serve_load.py [--concurrent 50] [--out benchmarks/results/serve_load.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_load.json"))
    a = ap.parse_args()

    import httpx

    from digiworm._io import atomic_write_json

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "digiworm.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        client = httpx.Client(base_url=url, timeout=600.0)
        t0 = time.perf_counter()
        for _ in range(600):
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        start_s = time.perf_counter() - t0
        neurons = [n["name"] for n in client.get("/api/neurons").json()["neurons"]]
        body = {"stimulate": ["AVAL"], "duration_s": 30.0}
        t0 = time.perf_counter()
        assert client.post("/api/simulate", json=body).status_code == 200
        first_s = time.perf_counter() - t0
        typical = []
        for name in neurons[:20]:
            t0 = time.perf_counter()
            r = client.post("/api/simulate", json={**body, "stimulate": [name]})
            typical.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        rss_before = _rss_mib(server.pid)
        rng = np.random.default_rng(0)
        targets = list(rng.choice(neurons, size=a.concurrent, replace=False))

        def one(name):
            t = time.perf_counter()
            r = httpx.post(f"{url}/api/simulate", json={**body, "stimulate": [name]}, timeout=600.0)
            wall = time.perf_counter() - t
            if r.status_code != 200:
                return name, False, wall, r.status_code
            res = r.json()
            dff = np.array(res["dff"], dtype=float)
            t_s = np.array(res["time_s"])
            rise = dff[(t_s > 5.0) & (t_s < 7.0)].max(axis=0) - dff[t_s < 5.0].mean(axis=0)
            ok = res["stimulated"] == [name] and res["neurons"][int(np.nanargmax(rise))] == name
            return name, ok, wall, 200

        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.concurrent) as pool:
            results = list(pool.map(one, targets))
        burst_s = time.perf_counter() - t0
        rss_after = _rss_mib(server.pid)
        walls = np.array([w for _, _, w, _ in results])
        out = {
            "cpu_count": os.cpu_count(),
            "server_start_s": start_s,
            "first_request_s (compiles)": first_s,
            "typical_request_s": {
                "median": float(np.median(typical)), "max": float(np.max(typical)), "n": 20
            },
            "concurrent": {
                "n": a.concurrent,
                "all_200": all(code == 200 for *_, code in results),
                "all_correct": all(ok for _, ok, _, _ in results),
                "wrong": [n for n, ok, _, _ in results if not ok],
                "burst_wall_s": burst_s,
                "per_request_wall_s": {
                    "median": float(np.median(walls)), "max": float(walls.max())
                },
            },
            "server_rss_MiB": {"before_burst": rss_before, "after_burst": rss_after},
        }  # fmt: skip
        print(json.dumps(out, indent=2))
        atomic_write_json(a.out, out)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
