"""Graded network: digiworm vs the same equations in scipy ``solve_ivp`` and Brian2.

Simulates the 302-neuron graded network (``graded_from_atlas`` defaults: Cook 2019 + short-range
peptides) for one optogenetic condition (AVAL, 40 mV, 0.5 s pulse at t = 1 s) and compares wall
time per simulated second per condition at matched accuracy. Accuracy is the max |Δ activity|
(activity = φ(V)) over all neurons at the 0.5 s samples against a float64 reference: scipy
Radau (rtol 1e-10, analytic Jacobian), cross-checked against Radau at rtol 1e-12, digiworm RK4
in float64 (dt 1 ms, a child process with JAX_ENABLE_X64) and digiworm RK4 at dt 0.1 ms in its
default float32 (which shows float32's floor).

Every tool starts from the same rest: the network's fixed point by Newton's method in NumPy.
digiworm computes its own rest inside ``simulate``: ``settle_s`` = 5 s without input, then a
Newton–Krylov polish onto the fixed point; each row records its t = 0 error
(``initial_activity_error``; listed in the diagnostics if over 1e-6).

Timing: each setting runs once to warm up (JIT compile / Cython build; ``first_call_s``), then
``--repeat`` times (once when slow); the best is kept. ``wall_per_sim_s`` is end to end
(digiworm: ``simulate`` including its rest computation; Brian2: network construction and the
three ``run()`` calls of the pulse protocol); ``integration_per_sim_s`` is the stepping alone
(digiworm: the same call with ``settle_s`` = one step; Brian2: less construction and the fixed
cost of each ``run()``). Ratios divide a peer's time by that of the cheapest digiworm row whose
error is <= the peer's.

    python benchmarks/graded_peers.py [--quick] [--out benchmarks/results/graded_peers.json]

Needs Brian2 (``pip install ".[bench]"``, numpy < 2.4); without it those rows are skipped (the
output says so). ``--smoke`` runs every part once at tiny sizes (2 s simulated, Radau reference
at rtol 1e-8, two digiworm settings in float32 and one in float64, one scipy tolerance per
method, Brian2's ``numpy`` target only): a check that it works, not a measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

STIM = "AVAL"
AMP_MV = 40.0
ONSET_S = 1.0
PULSE_S = 0.5
SAVE_DT_S = 0.5
SETTLE_S = 5.0
REF_DT_S = 1e-4


# -- the equations in NumPy (what a user would write for solve_ivp) ----------------------------
class NumpyGraded:
    """The graded network's right-hand side with dense (n, n) float64 matrices."""

    def __init__(self, model):
        def f(x):
            return np.asarray(x, dtype=np.float64)

        self.n = n = model.n_neurons
        self.g_gap = f(model.g_gap)
        self.g_chem = f(model.g_chem)
        self.e_chem = f(model.e_chem_mV)
        self.w_pep = f(model.w_pep_mV)
        self.tau = f(model.tau_m_s)
        self.v_rest = f(model.v_rest_mV)
        self.v_th = f(model.v_th_mV)
        self.tau_pep = float(model.tau_pep_s)
        self.a_r = float(model.a_r_per_s)
        self.a_d = float(model.a_d_per_s)
        self.beta = float(model.beta_per_mV)
        self.g_tonic = f(model.g_tonic)
        self.e_tonic = f(model.e_tonic_mV)
        self.gap_sum = self.g_gap.sum(1)
        self.chem_e = self.g_chem * self.e_chem
        y = model.init_state()
        self.y_init = np.concatenate([f(y.v_mV), f(y.s), f(y.p)])
        assert self.y_init.shape == (3 * n,)

    def arrays(self):
        """The parameters as float64 arrays (to check that two processes built one model)."""
        keys = ("g_gap", "g_chem", "e_chem", "w_pep", "tau", "v_rest", "v_th", "g_tonic", "e_tonic")
        out = {k: getattr(self, k) for k in keys}
        out["scalars"] = np.array([self.tau_pep, self.a_r, self.a_d, self.beta])
        return out

    def phi(self, v):
        return 1.0 / (1.0 + np.exp(-self.beta * (v - self.v_th)))

    def rhs(self, t, y, u):
        n = self.n
        v, s, p = y[:n], y[n : 2 * n], y[2 * n :]
        phi = self.phi(v)
        dv = (
            self.v_rest
            - v
            + self.g_gap @ v
            - self.gap_sum * v
            + self.chem_e @ s
            - (self.g_chem @ s) * v
            + self.w_pep @ p
            + self.g_tonic * (self.e_tonic - v)
            + u
        ) / self.tau
        ds = self.a_r * phi * (1.0 - s) - self.a_d * s
        dp = (phi - p) / self.tau_pep
        return np.concatenate([dv, ds, dp])

    def jac(self, t, y, u=None):
        n = self.n
        v, s = y[:n], y[n : 2 * n]
        phi = self.phi(v)
        dphi = self.beta * phi * (1.0 - phi)
        j = np.zeros((3 * n, 3 * n))
        idx = np.arange(n)
        j[:n, :n] = self.g_gap / self.tau[:, None]
        j[idx, idx] -= (1.0 + self.gap_sum + self.g_chem @ s + self.g_tonic) / self.tau
        j[:n, n : 2 * n] = (self.chem_e - v[:, None] * self.g_chem) / self.tau[:, None]
        j[:n, 2 * n :] = self.w_pep / self.tau[:, None]
        j[n + idx, idx] = self.a_r * dphi * (1.0 - s)
        j[n + idx, n + idx] = -self.a_r * phi - self.a_d
        j[2 * n + idx, idx] = dphi / self.tau_pep
        j[2 * n + idx, 2 * n + idx] = -1.0 / self.tau_pep
        return j

    def rest(self):
        """Newton's method for the fixed point (no input), from the uncoupled rest."""
        from scipy.optimize import root

        sol = root(
            lambda y: self.rhs(0.0, y, 0.0), self.y_init, jac=lambda y: self.jac(0.0, y), tol=1e-14
        )
        resid = float(np.abs(self.rhs(0.0, sol.x, 0.0)).max())
        if not sol.success or resid > 1e-9:
            raise RuntimeError(f"rest state not found (residual {resid:g})")
        eig = np.linalg.eigvals(self.jac(0.0, sol.x))
        return sol.x, resid, eig

    def activity(self, y):
        """Activity φ(V) for states (..., 3n)."""
        return self.phi(y[..., : self.n])


def solve_piecewise(net, y0, u_vec, duration, method, rtol, atol, jac=False):
    """solve_ivp over [0, T], restarted at the pulse edges; states at the 0.5 s sample times."""
    from scipy.integrate import solve_ivp

    edges = [0.0, ONSET_S, ONSET_S + PULSE_S, duration]
    times = np.round(np.arange(0.0, duration + 1e-9, SAVE_DT_S), 9)
    zero = np.zeros(net.n)
    out = [y0]
    nfev = 0
    y = y0
    for a, b in zip(edges[:-1], edges[1:]):
        u = u_vec if a >= ONSET_S and b <= ONSET_S + PULSE_S else zero
        t_eval = times[(times > a + 1e-9) & (times <= b + 1e-9)]
        kw = {"jac": net.jac} if jac else {}
        sol = solve_ivp(
            net.rhs, (a, b), y, method=method, t_eval=t_eval, rtol=rtol, atol=atol, args=(u,), **kw
        )
        if not sol.success:
            raise RuntimeError(f"solve_ivp {method} failed: {sol.message}")
        nfev += sol.nfev
        if len(t_eval) == 0 or abs(t_eval[-1] - b) > 1e-9:
            raise ValueError("duration, onset and pulse must be multiples of the 0.5 s sampling")
        out.extend(sol.y.T)
        y = sol.y[:, -1]
    return np.array(out), nfev


# -- helpers -------------------------------------------------------------------------------------
def timed(fn, repeat, slow_s=2.0):
    """Run ``fn`` once (warm-up), then time it ``repeat`` times (once if the warm-up took
    longer than ``slow_s``); return (first_s, best_s, result of the last call)."""
    t0 = time.perf_counter()
    res = fn()
    first = time.perf_counter() - t0
    walls = []
    for _ in range(1 if first > slow_s else repeat):
        t0 = time.perf_counter()
        res = fn()
        walls.append(time.perf_counter() - t0)
    return first, min(walls), res


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(*a):
    print(*a, flush=True)


# -- digiworm ------------------------------------------------------------------------------------
# (method, dt, also batched over every neuron)
DIGIWORM_SETTINGS = [
    ("heun", 0.05, True),
    ("heun", 0.02, True),
    ("heun", 0.01, True),
    ("heun", 0.005, True),
    ("rk4", 0.05, True),
    ("rk4", 0.02, True),
    ("rk4", 0.01, True),
]
# float64 (a JAX_ENABLE_X64 child process) is ~3x slower: batch only the cheaper settings
FLOAT64_SETTINGS = [
    ("heun", 0.02, True),
    ("heun", 0.005, False),
    ("rk4", 0.05, True),
    ("rk4", 0.02, True),
    ("rk4", 0.01, False),
]


# --smoke: one cheap and one accurate float32 setting (so a peer row has a matched one)
SMOKE_SETTINGS = [("heun", 0.05, True), ("rk4", 0.01, True)]
SMOKE_FLOAT64_SETTINGS = [("rk4", 0.05, True)]
SMOKE_SCIPY_RTOLS = (1e-3,)
SMOKE_BRIAN2_SETTINGS = [("numpy", "euler", 1e-3)]  # no Cython build


def build_model(float64=False):
    """digiworm's default graded network; ``float64``: the same float32-rounded parameters
    in float64 (needs JAX_ENABLE_X64)."""
    import digiworm
    import digiworm.models

    atlas = digiworm.atlas.load()
    model = digiworm.models.graded_from_atlas(atlas)
    if float64:
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        model = jax.tree_util.tree_map(
            lambda x: (
                jnp.asarray(np.asarray(x), dtype=jnp.float64) if eqx.is_inexact_array(x) else x
            ),
            model,
        )
    return model


def digiworm_activity(model, protocol, duration, dt, method, settle_s=SETTLE_S):
    from digiworm.simulate import simulate

    ds = simulate(
        model, protocol, duration, dt, save_dt_s=SAVE_DT_S, method=method, indicator=None,
        settle_s=settle_s,
    )  # fmt: skip
    return np.asarray(ds["activity"].values, dtype=np.float64)


def digiworm_rows(model, duration, repeat, settings, precision):
    """Time ``simulate`` for one condition and, where asked, for every neuron stimulated.

    ``integration_s`` is the same call settling for one step only (the integration without
    the rest computation); batched runs compute the rest once, unbatched, so theirs is the
    wall time less the single-condition rest overhead. Returns rows (without errors) and the
    stimulated condition's activity for each row.
    """
    from digiworm import DigiwormError
    from digiworm.simulate import Protocol

    names = model.names
    k = names.index(STIM)
    single = Protocol.single(names, [STIM], AMP_MV, ONSET_S, PULSE_S)
    each = Protocol.each_neuron(names, amplitude=AMP_MV, onset_s=ONSET_S, duration_s=PULSE_S)
    rows, acts, skipped = [], [], []
    for method, dt, batched in settings:

        def run(prot, settle_s=SETTLE_S, dt=dt, method=method):
            return digiworm_activity(model, prot, duration, dt, method, settle_s)

        try:
            first, wall, act = timed(lambda: run(single), repeat)
            _, integ, _ = timed(lambda dt=dt: run(single, settle_s=dt), repeat)
            results = [("1 condition", 1, first, wall, integ, act[0])]
            if batched:
                first_b, wall_b, act_b = timed(lambda: run(each), repeat)
                integ_b = wall_b - max(wall - integ, 0.0)
                results.append(
                    (f"{each.n_conditions} conditions", each.n_conditions, first_b, wall_b,
                     integ_b, act_b[k])
                )  # fmt: skip
        except DigiwormError as e:  # e.g. dt above the model's stability bound
            skipped.append(f"{method} dt={dt:g} ({precision}): {e}")
            log(f"  skipped digiworm {method} dt={dt:g}: {e}")
            continue
        for label, nc, first, wall, integ, a in results:
            rows.append(
                {
                    "tool": "digiworm",
                    "settings": f"{method} dt={dt * 1e3:g} ms, {label}, {precision}",
                    "method": method,
                    "dt_s": dt,
                    "precision": precision,
                    "conditions": nc,
                    "first_call_s": first,
                    "compile_s": max(first - wall, 0.0),
                    "wall_s": wall,
                    "integration_s": integ,
                    "wall_per_sim_s": wall / duration / nc,
                    "integration_per_sim_s": integ / duration / nc,
                }
            )
            acts.append(a)
            log(f"  digiworm {rows[-1]['settings']}: {wall:.3g} s (first call {first:.3g} s)")
    return rows, acts, skipped


def x64_child(path, duration, repeat, ref_dt, settings):
    """Child process (JAX_ENABLE_X64=1): digiworm in float64, reference run and timings."""
    import jax

    assert jax.config.jax_enable_x64, "run the child with JAX_ENABLE_X64=1"
    from digiworm.simulate import Protocol

    model = build_model(float64=True)
    arrays = NumpyGraded(model).arrays()
    with np.load(path + ".in.npz") as parent:  # the parent's (float32) model, as float64
        diff = max(float(np.abs(arrays[k] - parent[k]).max()) for k in parent.files)
    if diff:
        raise SystemExit(f"float64 child built a different model (max |diff| {diff:g}); "
                         "did src/ change during the run?")  # fmt: skip
    p = Protocol.single(model.names, [STIM], AMP_MV, ONSET_S, PULSE_S)
    t0 = time.perf_counter()
    ref = digiworm_activity(model, p, duration, ref_dt, "rk4")[0]
    ref_wall = time.perf_counter() - t0
    rows, acts, skipped = digiworm_rows(model, duration, repeat, settings, "float64")
    np.savez(path + ".out.npz", ref=ref, acts=np.array(acts))
    with open(path + ".out.json", "w") as f:
        json.dump({"rows": rows, "skipped": skipped, "ref_wall_s": ref_wall}, f)


def run_x64_child(net, duration, repeat, ref_dt, settings):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x64")
        np.savez(path + ".in.npz", **net.arrays())
        env = dict(os.environ, JAX_ENABLE_X64="1")
        cmd = [sys.executable, os.path.abspath(__file__), "--x64-child", path,
               "--duration", str(duration), "--repeat", str(repeat), "--ref-dt", str(ref_dt),
               "--x64-settings", json.dumps(settings)]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        log(out.stdout.rstrip())
        if out.returncode:
            raise RuntimeError(f"float64 digiworm child failed:\n{out.stderr[-3000:]}")
        with np.load(path + ".out.npz") as z:
            ref, acts = z["ref"], list(z["acts"])
        with open(path + ".out.json") as f:
            meta = json.load(f)
    return ref, acts, meta


# -- scipy ---------------------------------------------------------------------------------------
def bench_scipy(net, y_rest, duration, repeat, ref_act, rows, rtols=(1e-3, 1e-4, 1e-6)):
    u = np.zeros(net.n)
    u[net.stim_index] = AMP_MV
    for method in ("RK45", "LSODA"):
        for rtol in rtols:
            atol = rtol * 1e-2

            def run(method=method, rtol=rtol, atol=atol):
                return solve_piecewise(net, y_rest, u, duration, method, rtol, atol)

            first, wall, (ys, nfev) = timed(run, repeat)
            _ = first
            err = float(np.abs(net.activity(ys) - ref_act).max())
            rows.append(
                {
                    "tool": "scipy",
                    "settings": f"solve_ivp {method} rtol={rtol:g} atol={atol:g}",
                    "method": method,
                    "rtol": rtol,
                    "conditions": 1,
                    "nfev": int(nfev),
                    "error": err,
                    "first_call_s": first,
                    "wall_s": wall,
                    "wall_per_sim_s": wall / duration,
                    "integration_per_sim_s": wall / duration,
                }
            )
            log(_fmt_row(rows[-1]))


# -- Brian2 --------------------------------------------------------------------------------------
BRIAN_EQS = """
dv/dt = (v_rest - v + I_gap + I_chem + I_pep + g_tonic*(E_tonic - v) + drive) / tau : volt
ds/dt = a_r*phi*(1 - s) - a_d*s : 1
dp/dt = (phi - p) / tau_pep : 1
phi = 1/(1 + exp(-beta*(v - v_th))) : 1
I_gap : volt
I_chem : volt
I_pep : volt
tau : second (constant)
v_rest : volt (constant)
v_th : volt (constant)
g_tonic : 1 (constant)
E_tonic : volt (constant)
drive : volt
"""


def brian2_network(b2, net, y0, dt, method):
    """The graded network as a NeuronGroup with summed-variable Synapses (a Brian2 user's way).

    Objects get fixed names so that rebuilt networks generate the same code (Brian2 caches
    compiled code by its text) and the rebuild does not recompile.
    """
    n = net.n
    mV, second = b2.mV, b2.second
    b2.start_scope()
    b2.defaultclock.dt = dt * second
    namespace = {
        "a_r": net.a_r / second,
        "a_d": net.a_d / second,
        "tau_pep": net.tau_pep * second,
        "beta": net.beta / mV,
    }
    g = b2.NeuronGroup(n, BRIAN_EQS, method=method, namespace=namespace, name="neurons")
    g.tau = net.tau * second
    g.v_rest = net.v_rest * mV
    g.v_th = net.v_th * mV
    g.g_tonic = net.g_tonic
    g.E_tonic = net.e_tonic * mV
    g.v = y0[:n] * mV
    g.s = y0[n : 2 * n]
    g.p = y0[2 * n :]
    post, pre = np.nonzero(net.g_gap)
    gap = b2.Synapses(
        g, g, "w : 1 (constant)\nI_gap_post = w*(v_pre - v_post) : volt (summed)", name="gap"
    )
    gap.connect(i=pre, j=post)
    gap.w = net.g_gap[post, pre]
    post, pre = np.nonzero(net.g_chem)
    chem = b2.Synapses(
        g, g, "w : 1 (constant)\nE : volt (constant)\n"
        "I_chem_post = w*s_pre*(E - v_post) : volt (summed)", name="chem",
    )  # fmt: skip
    chem.connect(i=pre, j=post)
    chem.w = net.g_chem[post, pre]
    chem.E = net.e_chem[post, pre] * mV
    post, pre = np.nonzero(net.w_pep)
    pep = b2.Synapses(g, g, "w : volt (constant)\nI_pep_post = w*p_pre : volt (summed)", name="pep")
    pep.connect(i=pre, j=post)
    pep.w = net.w_pep[post, pre] * mV
    mon = b2.StateMonitor(g, "v", record=True, dt=SAVE_DT_S * second, name="mon")
    return b2.Network(g, gap, chem, pep, mon, name="graded"), g, mon


def brian2_run(b2, net, network, g, duration):
    """Run the pulse protocol: one run() per stretch of constant input, so the pulse edges fall
    on step boundaries whatever the method (a TimedArray input read at the RK stage times
    smears the edges)."""
    second = b2.second
    pulse_mV = np.zeros(net.n)  # (not named like a model variable: Brian2 reads caller locals)
    pulse_mV[net.stim_index] = AMP_MV
    g.drive = 0 * b2.mV
    network.run(ONSET_S * second)
    g.drive = pulse_mV * b2.mV
    network.run(PULSE_S * second)
    g.drive = 0 * b2.mV
    network.run((duration - ONSET_S - PULSE_S) * second)


def brian2_activity(b2, net, g, mon, duration):
    v = np.vstack([np.asarray(mon.v / b2.mV).T, np.asarray(g.v / b2.mV)[None]])
    assert v.shape[0] == int(round(duration / SAVE_DT_S)) + 1, v.shape
    return net.phi(v)


def bench_brian2(net, y_rest, duration, repeat, ref_act, rows, diag, settings):
    if importlib.util.find_spec("brian2") is None:
        labels = ", ".join(f"{m} dt={dt * 1e3:g} ms ({t})" for t, m, dt in settings)
        diag["brian2"] = f'not installed (pip install ".[bench]"); rows skipped: {labels}'
        diag["skipped_rows"].append(f"brian2 {labels}: not installed")
        log(f"skipped Brian2 rows ({labels}): brian2 is not installed "
            '(pip install ".[bench]")')  # fmt: skip
        return
    import brian2 as b2

    b2.prefs.logging.console_log_level = "WARNING"
    cache = tempfile.mkdtemp(prefix="digiworm-brian2-")
    b2.prefs.codegen.runtime.cython.cache_dir = cache  # cold cache: the first run compiles
    diag["brian2"] = {"version": b2.__version__, "code_objects": {}}
    try:
        for target, method, dt in settings:
            b2.prefs.codegen.target = target

            def build_and_run(method=method, dt=dt):
                t0 = time.perf_counter()
                network, g, mon = brian2_network(b2, net, y_rest, dt, method)
                t1 = time.perf_counter()
                brian2_run(b2, net, network, g, duration)
                t2 = time.perf_counter()
                act = brian2_activity(b2, net, g, mon, duration)
                # fixed cost of one run() call (code generation, namespace resolution): a 1-step run
                t3 = time.perf_counter()
                network.run(dt * b2.second)
                per_run = time.perf_counter() - t3
                return {"build_s": t1 - t0, "run_s": t2 - t1, "per_run_call_s": per_run,
                        "network": network, "act": act}  # fmt: skip

            t0 = time.perf_counter()
            build_and_run()
            first = time.perf_counter() - t0
            runs = [build_and_run() for _ in range(1 if dt < 1e-3 else repeat)]
            best = min(runs, key=lambda r: r["build_s"] + r["run_s"])
            network = best.pop("network")
            objs = network.sorted_objects
            ran = sorted({type(o.codeobj).__name__ for o in objs if getattr(o, "codeobj", None)})
            err = float(np.abs(best.pop("act") - ref_act).max())
            per_run = min(r["per_run_call_s"] for r in runs)
            steps_s = max(best["run_s"] - 3 * per_run, 0.0)  # three run() calls per protocol
            rows.append(
                {
                    "tool": "brian2",
                    "settings": f"{method} dt={dt * 1e3:g} ms, {'/'.join(ran)}",
                    "method": method,
                    "dt_s": dt,
                    "target": target,
                    "code_objects": ran,
                    "conditions": 1,
                    "error": err,
                    "first_call_s": first,
                    "compile_s": max(first - best["build_s"] - best["run_s"], 0.0),
                    "wall_s": best["build_s"] + best["run_s"],
                    **best,
                    "per_run_call_s": per_run,
                    "wall_per_sim_s": (best["build_s"] + best["run_s"]) / duration,
                    "integration_per_sim_s": steps_s / duration,
                }
            )
            diag["brian2"]["code_objects"][f"target={target} {method} dt={dt:g}"] = ran
            log(_fmt_row(rows[-1]))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


# -- table ---------------------------------------------------------------------------------------
def _num(v, fmt):
    if v is None:
        return "-"
    return (
        f"{v:.0f}" if fmt == "ratio" and v >= 1000 else format(v, ".3g" if fmt == "ratio" else fmt)
    )


def _fmt_row(r):
    line = (
        f"{r['tool']:8} {r['settings']:44} {r['error']:8.1e} {r['wall_per_sim_s']:10.2e} "
        f"{_num(r['integration_per_sim_s'], '10.2e'):>10}"
    )
    if r["tool"] != "digiworm" and "ratio_1c" in r:
        for key in ("ratio_1c", "ratio_1c_integration", "ratio_best"):
            line += f" {_num(r[key], 'ratio'):>8}"
    return line


def add_ratios(rows):
    """Speed ratio at matched accuracy: peer time / time of the cheapest digiworm row whose
    error is <= the peer's, among single-condition runs (``1c``) and among all runs (``best``,
    batched included), for end-to-end wall time and for integration time alone."""
    dw = [r for r in rows if r["tool"] == "digiworm"]
    for r in rows:
        if r["tool"] == "digiworm":
            continue
        for key, pool in (("1c", [d for d in dw if d["conditions"] == 1]), ("best", dw)):
            ok = [d for d in pool if d["error"] <= r["error"]]
            for which, suffix in (
                ("wall_per_sim_s", ""),
                ("integration_per_sim_s", "_integration"),
            ):
                cand = [d for d in ok if d[which] is not None]
                if not cand or r[which] is None:
                    r[f"ratio_{key}{suffix}"] = None
                    r[f"matched_{key}{suffix}"] = None
                    continue
                best = min(cand, key=lambda d: d[which])
                r[f"ratio_{key}{suffix}"] = r[which] / best[which]
                r[f"matched_{key}{suffix}"] = best["settings"]


HEADER = (
    f"{'tool':8} {'settings':44} {'max|Δa|':>8} {'s/sim s/c':>10} {'integr.':>10}"
    f" {'x 1c':>8} {'x 1c int':>8} {'x any':>8}"
)


def print_table(rows):
    log("\n" + HEADER)
    log("-" * len(HEADER))
    for r in rows:
        log(_fmt_row(r))
    log(
        "max|Δa|: max |activity - reference| over neurons and 0.5 s samples.\n"
        "s/sim s/c: wall s per simulated s per condition, end to end (digiworm: simulate()\n"
        "  including its rest computation; Brian2: network construction + 3 run() calls).\n"
        "integr.: stepping only (digiworm: settle_s = one step; Brian2: less construction and\n"
        "  the fixed cost of each run() call).\n"
        "x 1c / x any: peer s/sim s/c over that of the cheapest digiworm run (one condition /\n"
        "  any, batched included) whose error is <= the peer's ('-': none is that accurate);\n"
        "  x 1c int: the same with integration times (one condition)."
    )
    log("\nmatched digiworm runs (end to end):")
    for r in rows:
        if r["tool"] != "digiworm":
            log(f"  {r['tool']} {r['settings']}: 1c -> {r.get('matched_1c')}; "
                f"any -> {r.get('matched_best')}")  # fmt: skip


def write_json(path, payload):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".graded_peers.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def source_fingerprint():
    """Hash of the digiworm model and simulator sources (they change while being developed)."""
    import hashlib

    import digiworm

    root = os.path.dirname(digiworm.__file__)
    h = hashlib.sha256()
    for rel in ("models/_graded.py", "models/_base.py", "simulate/_simulate.py",
                "simulate/_protocol.py"):  # fmt: skip
        path = os.path.join(root, rel)
        if os.path.exists(path):
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


# -- main ----------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s simulated, 1 timed repeat")
    parser.add_argument(
        "--smoke", action="store_true", help="every part once at tiny sizes (a check, seconds)"
    )
    parser.add_argument("--duration", type=float, help="simulated seconds (default 10; quick 3)")
    parser.add_argument("--repeat", type=int, help="timed repeats, best kept (3; quick 1)")
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "results", "graded_peers.json")
    )
    parser.add_argument("--no-brian2", action="store_true", help="skip the Brian2 rows")
    parser.add_argument(
        "--no-float64", action="store_true",
        help="skip the float64 digiworm child process (cross-check and float64 rows)",
    )  # fmt: skip
    parser.add_argument("--x64-child", help=argparse.SUPPRESS)
    parser.add_argument("--x64-settings", help=argparse.SUPPRESS)
    parser.add_argument("--ref-dt", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = args.quick or args.smoke
    duration = args.duration or (2.0 if args.smoke else 3.0 if args.quick else 10.0)
    repeat = args.repeat or (1 if quick else 3)
    if args.x64_child:
        settings = [tuple(x) for x in json.loads(args.x64_settings)]
        return x64_child(args.x64_child, duration, repeat, args.ref_dt, settings)
    t_start = time.perf_counter()

    import jax
    import scipy

    t0 = time.perf_counter()
    model = build_model()
    build_s = time.perf_counter() - t0
    net = NumpyGraded(model)
    net.stim_index = model.names.index(STIM)
    fingerprint = source_fingerprint()
    log(f"model: {net.n} neurons ({np.asarray(model.g_gap).dtype}), built in {build_s:.2f} s; "
        f"max_rate {float(model.max_rate()):.1f} 1/s; digiworm sources {fingerprint}")  # fmt: skip

    y_rest, resid, eig = net.rest()
    slow, fast = float(-eig.real.max()), float(-eig.real.min())
    log(f"rest: Newton residual {resid:.1e}; linearised rates {slow:.3f} … {fast:.1f} 1/s; "
        f"settle {SETTLE_S:g} s leaves ~{np.exp(-slow * SETTLE_S):.0e} of the offset")  # fmt: skip
    diag = {"rest": {"newton_residual": resid, "slowest_rate_per_s": slow,
                     "fastest_rate_per_s": fast, "max_rate_bound_per_s": float(model.max_rate()),
                     "settle_s": SETTLE_S}}  # fmt: skip

    # reference and cross-checks
    u = np.zeros(net.n)
    u[net.stim_index] = AMP_MV
    # Radau tolerances of the reference and of its cross-check (--smoke: looser, seconds)
    (ref_rtol, ref_atol), (fine_rtol, fine_atol) = (
        ((1e-8, 1e-10), (1e-10, 1e-12)) if args.smoke else ((1e-10, 1e-12), (1e-12, 1e-14))
    )
    t0 = time.perf_counter()
    ys_ref, nfev = solve_piecewise(net, y_rest, u, duration, "Radau", ref_rtol, ref_atol, jac=True)
    diag["reference"] = {
        "tool": f"scipy solve_ivp Radau rtol {ref_rtol:g} atol {ref_atol:g}, analytic Jacobian, "
        "float64, restarted at the pulse edges, from the Newton rest",
        "wall_s": time.perf_counter() - t0,
        "nfev": int(nfev),
    }
    ref_act = net.activity(ys_ref)
    # self-convergence (DOP853 is not used: on this network its error estimate fails, e.g.
    # rtol 1e-10 gives 7e-6 over 10 s while Radau and RK4 agree to 1e-11)
    ys_fine, _ = solve_piecewise(net, y_rest, u, duration, "Radau", fine_rtol, fine_atol, jac=True)
    checks = {
        f"scipy Radau rtol {fine_rtol:g}": float(np.abs(net.activity(ys_fine) - ref_act).max())
    }
    from digiworm.simulate import Protocol

    single = Protocol.single(model.names, [STIM], AMP_MV, ONSET_S, PULSE_S)
    # (--smoke: the dt of a smoke row, so that one compiled simulation serves both)
    ref32_dt = 0.01 if args.smoke else 1e-3 if quick else REF_DT_S
    t0 = time.perf_counter()
    act32 = digiworm_activity(model, single, duration, ref32_dt, "rk4")[0]
    diag["digiworm_rk4_float32_check_wall_s"] = time.perf_counter() - t0
    checks[f"digiworm rk4 dt={ref32_dt * 1e3:g} ms float32"] = float(np.abs(act32 - ref_act).max())
    checks[f"digiworm rk4 dt={ref32_dt * 1e3:g} ms float32, t=0"] = float(
        np.abs(act32[0] - ref_act[0]).max()
    )
    rows, skipped = [], []
    diag["skipped_rows"] = []  # whole groups of rows left out, and why
    if not args.no_float64:
        log("float64 digiworm (child process with JAX_ENABLE_X64=1) ...")
        settings64 = SMOKE_FLOAT64_SETTINGS if args.smoke else FLOAT64_SETTINGS
        ref_dt = args.ref_dt or (settings64[0][1] if args.smoke else 1e-3)
        ref64, acts64, meta = run_x64_child(net, duration, repeat, ref_dt, settings64)
        checks[f"digiworm rk4 dt={ref_dt * 1e3:g} ms float64"] = float(
            np.abs(ref64 - ref_act).max()
        )
        checks[f"digiworm rk4 dt={ref_dt * 1e3:g} ms float64, t=0"] = float(
            np.abs(ref64[0] - ref_act[0]).max()
        )
        diag["digiworm_rk4_float64_check_wall_s"] = meta["ref_wall_s"]
        for r, a in zip(meta["rows"], acts64):
            r["error"] = float(np.abs(a - ref_act).max())
            r["initial_activity_error"] = float(np.abs(a[0] - ref_act[0]).max())
        rows64 = meta["rows"]
        skipped += meta["skipped"]
    else:
        rows64 = []
        diag["skipped_rows"].append("digiworm float64 rows and cross-check: --no-float64")
        log("skipped the float64 digiworm rows and cross-check: --no-float64")
    diag["reference_cross_checks_max_abs_activity"] = checks
    diag["response"] = {
        "max_abs_activity_change_from_rest": float(np.abs(ref_act - ref_act[0]).max()),
        "activity_range": [float(ref_act.min()), float(ref_act.max())],
    }
    for k, v in checks.items():
        log(f"cross-check {k:42} max|Δa| = {v:.2e}")
    log(
        f"response: max |a(t) - a(0)| = {diag['response']['max_abs_activity_change_from_rest']:.3f}"
    )

    log("float32 digiworm (its default) ...")
    settings32 = SMOKE_SETTINGS if args.smoke else DIGIWORM_SETTINGS
    rows32, acts32, skipped32 = digiworm_rows(model, duration, repeat, settings32, "float32")
    skipped += skipped32
    for r, a in zip(rows32, acts32):
        r["error"] = float(np.abs(a - ref_act).max())
        r["initial_activity_error"] = float(np.abs(a[0] - ref_act[0]).max())
    rows += rows32 + rows64
    bad = [r["settings"] for r in rows if r["initial_activity_error"] > 1e-6]
    if bad:
        diag["initial_state_mismatch_over_1e-6"] = bad
    log("\n" + HEADER)
    for r in rows:
        log(_fmt_row(r))
    if args.smoke:
        bench_scipy(net, y_rest, duration, repeat, ref_act, rows, SMOKE_SCIPY_RTOLS)
    else:
        bench_scipy(net, y_rest, duration, repeat, ref_act, rows)
    if args.no_brian2:
        diag["skipped_rows"].append("brian2: --no-brian2")
        log("skipped the Brian2 rows: --no-brian2")
    else:
        b2_settings = SMOKE_BRIAN2_SETTINGS if args.smoke else [
            ("auto", "euler", 1e-3),
            ("auto", "rk2", 1e-3),
            ("auto", "rk4", 1e-3),
            ("auto", "euler", 1e-4),
            ("auto", "rk4", 1e-4),
            ("numpy", "euler", 1e-3),
        ]  # fmt: skip
        bench_brian2(net, y_rest, duration, repeat, ref_act, rows, diag, b2_settings)
    add_ratios(rows)
    print_table(rows)

    diag["skipped"] = skipped
    diag["peak_rss_mb"] = peak_rss_mb()
    diag["peak_rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    diag["total_wall_s"] = time.perf_counter() - t_start
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "scipy": scipy.__version__, "jax": jax.__version__}  # fmt: skip
    try:
        import brian2

        versions["brian2"] = brian2.__version__
    except ImportError:
        pass
    payload = {
        "benchmark": "graded_peers",
        "smoke": args.smoke,
        "problem": {
            "neurons": net.n,
            "stimulus": STIM,
            "amplitude_mV": AMP_MV,
            "onset_s": ONSET_S,
            "pulse_s": PULSE_S,
            "duration_s": duration,
            "save_dt_s": SAVE_DT_S,
            "settle_s": SETTLE_S,
            "digiworm_sources_sha256_16": fingerprint,
            "error": "max |activity - reference| over neurons and 0.5 s samples",
        },  # fmt: skip
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": versions,
        "repeat": repeat,
        "diagnostics": diag,
        "rows": rows,
    }
    write_json(args.out, payload)
    for line in diag["skipped_rows"]:
        log(f"skipped rows: {line}")
    log(f"\npeak RSS {diag['peak_rss_mb']:.0f} MB (float64 child {diag['peak_rss_children_mb']:.0f}"
        f" MB); total {diag['total_wall_s']:.0f} s; wrote {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
