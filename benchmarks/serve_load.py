"""The explorer under load: response time of a typical request and 50 concurrent experiments.

Starts ``digiworm serve`` in a subprocess on a free localhost port, warms it up (the first
request compiles the model), then

1. times 20 typical single-stimulation requests one after another (graded network, 30 s
   simulated, the measured response and its score included);
2. fires ``--concurrent`` (default 50) different stimulation requests at once from threads,
   mixed (shuffled, fixed seed) with ``--hostile`` (default 40) hostile ones: tiny dt (4e10
   steps), huge and non-finite durations, chunked oversized bodies (no Content-Length), long
   name lists, untrusted ``Host`` headers, NaN/Infinity numbers, a compare whose second
   condition is hostile; checks every good answer (the neuron a request stimulated is the one
   whose ΔF/F rises most) and that every hostile one is refused with a 4xx, and times both;
3. reads the server's resident memory (VmRSS, /proc) before and after the burst.

    python benchmarks/serve_load.py [--concurrent 50] [--hostile 40]
                                    [--out benchmarks/results/serve_load.json]

``--smoke`` is the same run at tiny sizes (10 s simulated, 3 typical requests, a burst of 4 good
and one of each hostile kind): a check that it works, not a measurement.
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


def _hostile_requests(url: str) -> list[tuple[str, dict]]:
    """Return ``(kind, httpx.request keyword arguments)`` for the hostile kinds, one each."""
    json_h = {"Content-Type": "application/json"}

    def chunked(n_bytes: int, chunk: int = 4096):
        def gen():
            head = b'{"stimulate": ["AVAL"], "duration_s": 10.0}'
            yield head
            sent = len(head)
            while sent < n_bytes:
                yield b" " * chunk
                sent += chunk

        return gen()

    aval = {"stimulate": ["AVAL"]}
    return [
        ("tiny dt, conductance", {"json": {**aval, "model": "conductance", "dt_s": 1e-9,
                                           "duration_s": 40}}),
        ("tiny dt, graded", {"json": {**aval, "dt_s": 1e-9, "duration_s": 120}}),
        ("tiny dt, export", {"json": {**aval, "dt_s": 1e-7}, "url": f"{url}/api/export.nc"}),
        ("compare, hostile b", {"json": {"a": {**aval, "duration_s": 10.0},
                                         "b": {**aval, "model": "kernel", "dt_s": 1e-9}},
                                "url": f"{url}/api/compare"}),
        ("huge duration", {"json": {**aval, "duration_s": 1e9}}),
        ("huge duration, conductance", {"json": {**aval, "model": "conductance",
                                                 "duration_s": 1e6}}),
        ("chunked 1 MB body", {"content": chunked(1_000_000), "headers": json_h}),
        ("chunked 64 kB body", {"content": chunked(65_536), "headers": json_h}),
        ("declared 10 MB body", {"content": b" " * 10_000_000, "headers": json_h}),
        ("long list (400 names)", {"json": {"stimulate": ["AVAL"] * 400}}),
        ("long list, atlas job", {"json": {"ablate": ["AVAL"] * 303},
                                  "url": f"{url}/api/jobs"}),
        ("41 names", {"json": {"stimulate": ["AVAL"] * 41}}),
        ("bad host", {"json": aval, "headers": {"Host": "evil.example"}}),
        ("bad host, page", {"method": "GET", "url": f"{url}/",
                            "headers": {"Host": "rebind.example:80"}}),
        ("NaN amplitude", {"content": b'{"stimulate": ["AVAL"], "amplitude": NaN}',
                           "headers": json_h}),
        ("Infinity duration", {"content": b'{"stimulate": ["AVAL"], "duration_s": Infinity}',
                               "headers": json_h}),
        ("1e999 dt", {"content": b'{"stimulate": ["AVAL"], "dt_s": 1e999}', "headers": json_h}),
        ("-Infinity dose", {"content": b'{"stimulate": ["AVAL"], "drugs": [{"name": "aldicarb", '
                                       b'"dose_uM": -Infinity}]}', "headers": json_h}),
        ("dt off the grid", {"json": {**aval, "dt_s": 0.0137}}),
        ("conductance atlas job", {"json": {"model": "conductance"}, "url": f"{url}/api/jobs"}),
    ]  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrent", type=int, help="good requests in the burst (50; smoke 4)")
    ap.add_argument("--hostile", type=int, help="hostile requests in the burst (40; smoke: 1 each)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_load.json"))
    ap.add_argument("--smoke", action="store_true", help="every part at tiny sizes (seconds)")
    a = ap.parse_args()
    if a.concurrent is None:
        a.concurrent = 4 if a.smoke else 50
    if a.hostile is None:
        a.hostile = len(_hostile_requests("")) if a.smoke else 40
    n_typical = 3 if a.smoke else 20
    duration_s = 10.0 if a.smoke else 30.0  # the checks read 0-7 s (stimulation at 5 s)

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
            if server.poll() is not None:
                raise SystemExit(f"digiworm serve exited:\n{server.stderr.read().decode()[-3000:]}")
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        start_s = time.perf_counter() - t0
        neurons = [n["name"] for n in client.get("/api/neurons").json()["neurons"]]
        body = {"stimulate": ["AVAL"], "duration_s": duration_s}
        t0 = time.perf_counter()
        assert client.post("/api/simulate", json=body).status_code == 200
        first_s = time.perf_counter() - t0
        typical = []
        for name in neurons[:n_typical]:
            t0 = time.perf_counter()
            r = client.post("/api/simulate", json={**body, "stimulate": [name]})
            typical.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        rss_before = _rss_mib(server.pid)
        rng = np.random.default_rng(0)
        targets = list(rng.choice(neurons, size=a.concurrent, replace=False))
        kinds = _hostile_requests(url)

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

        def bad(k):
            kind, kw = _hostile_requests(url)[k % len(kinds)]  # fresh: a generator body is spent
            method, target = kw.pop("method", "POST"), kw.pop("url", f"{url}/api/simulate")
            t = time.perf_counter()
            try:
                code = httpx.request(method, target, timeout=600.0, **kw).status_code
            except httpx.HTTPError as exc:  # the server cut the connection: not an answer
                code = type(exc).__name__
            return kind, code, time.perf_counter() - t

        jobs = [("good", name) for name in targets] + [("hostile", k) for k in range(a.hostile)]
        order = rng.permutation(len(jobs))
        jobs = [jobs[i] for i in order]

        def run(job):
            what, arg = job
            return what, (one(arg) if what == "good" else bad(arg))

        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(jobs)) as pool:
            mixed = list(pool.map(run, jobs))
        burst_s = time.perf_counter() - t0
        rss_after = _rss_mib(server.pid)
        results = [r for what, r in mixed if what == "good"]
        refused = [r for what, r in mixed if what == "hostile"]
        walls = np.array([w for _, _, w, _ in results])
        refuse_s = np.array([w for *_, w in refused])
        not_4xx = [(k, c) for k, c, _ in refused if not (isinstance(c, int) and 400 <= c < 500)]
        out = {
            "smoke": a.smoke,
            "cpu_count": os.cpu_count(),
            "duration_s": duration_s,
            "server_start_s": start_s,
            "first_request_s (compiles)": first_s,
            "typical_request_s": {
                "median": float(np.median(typical)), "max": float(np.max(typical)),
                "n": n_typical,
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
            "hostile": {
                "n": a.hostile,
                "kinds": len(kinds),
                "all_4xx": not not_4xx,
                "not_4xx": not_4xx,
                "status_by_kind": {
                    k: sorted({str(c) for kk, c, _ in refused if kk == k}) for k, _, _ in refused
                },
                "refusal_wall_s": {
                    "median": float(np.median(refuse_s)), "max": float(refuse_s.max())
                },
                "slowest_refusals_s": [
                    [k, round(w, 3)] for k, _, w in sorted(refused, key=lambda r: -r[2])[:3]
                ],
            },
            "good_answered_correctly": f"{sum(ok for _, ok, _, _ in results)}/{len(results)}",
            "server_rss_MiB": {"before_burst": rss_before, "after_burst": rss_after},
        }  # fmt: skip
        print(json.dumps(out, indent=2))
        atomic_write_json(a.out, out)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
