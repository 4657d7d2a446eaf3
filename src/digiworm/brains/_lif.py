r"""The leaky integrate-and-fire brain of Shiu et al. 2024, on sparse coupling.

The whole-fly model of Shiu et al. (2024, Nature 634:210; their ``model.py``) per neuron:

.. math::

    \tau_m \dot v = v_0 - v + g, \qquad \tau_s \dot g = -g \qquad (\text{unless refractory}),

a spike when :math:`v > v_{th}`, then :math:`v = v_{rst}`, :math:`g = 0` and
:math:`t_{rfc}` of refractoriness (``v`` and ``g`` frozen); a spike of neuron *j* adds
:math:`w_{ij}` = (signed synapse count) × :math:`w_{syn}` to :math:`g_i` after the delay
:math:`t_{dly}`. Stimulated neurons receive Poisson spikes at :math:`r_{poi}` that add
:math:`f_{poi} w_{syn}` to ``v`` and have no refractory period. Their constants are
:data:`SHIU_PARAMS`.

Each step of ``dt`` does what Brian2's default schedule does (the engine of the published
model), so both give the same spikes: (1) exact integration of the linear equations over
``dt`` for the neurons not refractory; (2) threshold; (3) synaptic input of the spikes
``round(t_dly / dt)`` steps old, and external input, both lost on a neuron that is
refractory (Brian2 writes ``unless refractory`` variables only outside the refractory
period); (4) reset of this step's spikers.
Coupling is event driven by default (``coupling="event"``): a step reads only the out-edges of
the neurons that spiked, found from the edges sorted by their presynaptic neuron (CSR row
offsets) — cost per step O(N + edges of the spikers), as in Brian2 and GeNN — in chunks of
``edge_budget`` edges, as many chunks as the step needs, so no spike is ever dropped.
``coupling="all"`` touches every edge every step (one ``segment_sum``; cost O(edges)); both
give the same spikes (tested). Memory grows with the number of connections, not N².
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError
from ..simulate import batch_strategy

__all__ = ["SHIU_PARAMS", "LIFNetwork", "lif_from_connectome", "simulate_lif"]

#: Constants of Shiu et al. 2024 (``default_params`` of their model.py), in mV and ms.
SHIU_PARAMS = {
    "v_0_mV": -52.0,  # resting potential
    "v_rst_mV": -52.0,  # reset
    "v_th_mV": -45.0,  # threshold
    "t_mbr_ms": 20.0,  # membrane time constant (0.002 uF x 10 MOhm)
    "tau_ms": 5.0,  # synaptic decay
    "t_rfc_ms": 2.2,  # refractory period
    "t_dly_ms": 1.8,  # synaptic delay
    "w_syn_mV": 0.275,  # weight per synapse
    "r_poi_hz": 150.0,  # Poisson input rate
    "f_poi": 250.0,  # Poisson weight, in w_syn
}


class LIFNetwork(eqx.Module):
    """A LIF network on an edge list (see the module for the equations).

    ``pre``, ``post``: int32 edge endpoints; ``w_mV``: each edge's jump of ``g`` (signed).
    The constants are floats shared by every neuron.
    """

    pre: jax.Array
    post: jax.Array
    w_mV: jax.Array
    n: int = eqx.field(static=True)
    v_0_mV: float = SHIU_PARAMS["v_0_mV"]
    v_rst_mV: float = SHIU_PARAMS["v_rst_mV"]
    v_th_mV: float = SHIU_PARAMS["v_th_mV"]
    t_mbr_ms: float = SHIU_PARAMS["t_mbr_ms"]
    tau_ms: float = SHIU_PARAMS["tau_ms"]
    t_rfc_ms: float = SHIU_PARAMS["t_rfc_ms"]
    t_dly_ms: float = SHIU_PARAMS["t_dly_ms"]
    w_poi_mV: float = SHIU_PARAMS["f_poi"] * SHIU_PARAMS["w_syn_mV"]

    def __check_init__(self):
        if self.tau_ms == self.t_mbr_ms:
            raise DigiwormError("tau_ms must differ from t_mbr_ms (the exact step divides by it)")
        for name in ("t_mbr_ms", "tau_ms", "t_rfc_ms", "t_dly_ms"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise DigiwormError(f"{name} must be a finite time >= 0 ms; got {v}")

    def propagators(self, dt_ms: float):
        """Return the exact one-step map ``(a, b, c)`` of the linear equations.

        ``v' = v0 + a (v - v0) + c g`` and ``g' = b g`` over ``dt_ms``.
        """
        a = math.exp(-dt_ms / self.t_mbr_ms)
        b = math.exp(-dt_ms / self.tau_ms)
        c = self.tau_ms / (self.tau_ms - self.t_mbr_ms) * (b - a)
        return a, b, c


def lif_from_connectome(connectome, *, w_syn_mV: float = SHIU_PARAMS["w_syn_mV"], **params):
    """Return the :class:`LIFNetwork` of a connectome's chemical synapses.

    Gap junctions are not part of Shiu et al.'s model: a connectome with any is refused
    rather than silently dropped.
    """
    if connectome.electrical.any():
        raise DigiwormError(
            f"the LIF model has no gap junctions and {connectome.source} has "
            f"{int(connectome.electrical.sum())}; use the graded network for it"
        )
    unknown = set(params) - {k for k in SHIU_PARAMS if k not in ("w_syn_mV", "r_poi_hz", "f_poi")}
    if unknown:
        raise DigiwormError(f"unknown LIF parameter(s) {sorted(unknown)}")
    pre, post, w = connectome.chemical()
    order = np.argsort(pre, kind="stable")  # the event-driven step reads the edges by pre
    pre, post, w = pre[order], post[order], w[order]
    return LIFNetwork(pre=jnp.asarray(pre, jnp.int32), post=jnp.asarray(post, jnp.int32),
                      w_mV=jnp.asarray(w * w_syn_mV), n=connectome.n_neurons,
                      **params)  # fmt: skip


def simulate_lif(
    net: LIFNetwork,
    duration_s: float,
    *,
    dt_s: float = 1e-4,
    stimulated=None,
    rate_hz: float = SHIU_PARAMS["r_poi_hz"],
    input_spikes=None,
    key=None,
    trials: int = 1,
    record=None,
    coupling: str = "event",
    edge_budget: int | None = None,
    batch: str = "auto",
):
    """Run ``trials`` trials of ``net``; return spike counts and, for ``record``, spike rasters.

    Parameters
    ----------
    stimulated : array of int, optional
        Neurons driven by Poisson spikes at ``rate_hz`` (each adds ``net.w_poi_mV`` to ``v``);
        they have no refractory period, as in Shiu et al.
    input_spikes : bool array (steps, n), optional
        Deterministic external spikes instead (each adds ``net.w_poi_mV`` to ``v``), e.g. to
        compare with another simulator spike for spike.
    key : jax.random key
        Seeds the Poisson input (one independent stream per trial). On a host with several
        devices (GPUs) the trials are spread over them (:func:`_shard_trials`).
    batch : {"auto", "vmap", "loop"}
        The trials as one ``vmap`` or one after another in the same compiled program
        (:func:`digiworm.simulate.batch_strategy`: ``"auto"`` loops on a CPU, where the step is
        memory-bound, and batches on an accelerator). Same spikes either way.
    record : array of int, optional
        Neurons whose every spike is returned (``(trials, steps, len(record))`` bool).
    coupling : {"event", "all"}
        ``"event"`` (default) delivers only the spikers' out-edges each step; ``"all"`` sums
        over every edge every step. Same spikes; ``"event"`` is far cheaper when few neurons
        spike per step (a fly brain at a few Hz: ~0.1 % of neurons per 0.1 ms step).
    edge_budget : int, optional
        Edges delivered per chunk by the event-driven step (a step runs as many chunks as its
        spikers' out-edges need). Default: 16 times the mean out-degree, at least 1,024 and at
        most the number of edges. It tunes speed only, never the result.

    Returns
    -------
    dict with ``counts`` ``(trials, n)`` int, ``rate_hz`` ``(trials, n)``, ``raster`` (or
    None), ``dt_s`` and ``steps``.
    """
    n = net.n
    strategy = batch_strategy(batch)
    if coupling not in ("event", "all"):
        raise DigiwormError(f"coupling must be 'event' or 'all'; got {coupling!r}")
    steps = int(round(duration_s / dt_s))
    if not (math.isfinite(duration_s) and duration_s > 0 and steps >= 1):
        raise DigiwormError(f"duration must be > 0 s and at least one step; got {duration_s}")
    if not (isinstance(trials, int) and trials >= 1):
        raise DigiwormError(f"trials must be a whole number >= 1; got {trials}")
    dt_ms = 1e3 * dt_s
    delay = int(round(net.t_dly_ms / dt_ms))
    if delay < 1:
        raise DigiwormError(f"the synaptic delay {net.t_dly_ms} ms is shorter than a step")
    refractory = int(round(net.t_rfc_ms / dt_ms))
    dtype = jnp.asarray(0.0).dtype
    drive = np.zeros(n, dtype=bool)
    if stimulated is not None:
        idx = np.asarray(stimulated, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise DigiwormError(f"stimulated neurons must be indices in [0, {n}); got {idx}")
        drive[idx] = True
    if input_spikes is not None:
        input_spikes = np.asarray(input_spikes, dtype=bool)
        if input_spikes.shape != (steps, n):
            raise DigiwormError(
                f"input_spikes must be (steps, n) = ({steps}, {n}); got {input_spikes.shape}"
            )
    rec = np.asarray([] if record is None else record, dtype=np.int64)
    if key is None:
        key = jax.random.PRNGKey(0)
    keys = jax.random.split(key, trials)
    p = rate_hz * dt_s
    if stimulated is not None and not (0 <= p <= 1):
        raise DigiwormError(f"rate_hz x dt_s must be a probability; got {p}")
    a, b, c = net.propagators(dt_ms)
    small = np.int8 if refractory < 127 else np.int32  # the countdown of refractory steps
    r_steps = jnp.asarray(np.where(drive, 0, refractory).astype(small))
    ext = None
    if input_spikes is not None:  # padded to whole rounds of ``delay`` steps (see _trial)
        pad = -steps % delay
        ext = jnp.asarray(np.concatenate([input_spikes, np.zeros((pad, n), bool)]))
    if strategy == "vmap":  # several devices: each runs its share of the batch
        keys = _shard_trials(keys)
    stim_idx = jnp.asarray(np.flatnonzero(drive), jnp.int32)
    csr = None
    budget = 0
    if coupling == "event" and net.pre.shape[0]:  # no edges: nothing to deliver either way
        net, row_ptr = _sorted_by_pre(net)
        n_edges = int(net.pre.shape[0])
        if edge_budget is None:
            budget = max(1024, 16 * int(np.ceil(n_edges / max(n, 1))))
        elif isinstance(edge_budget, (int, np.integer)) and edge_budget >= 1:
            budget = int(edge_budget)
        else:
            raise DigiwormError(f"edge_budget must be a whole number >= 1; got {edge_budget!r}")
        budget = max(1, min(budget, n_edges))
        csr = (jnp.asarray(row_ptr[:-1], jnp.int32), jnp.asarray(np.diff(row_ptr), jnp.int32))
    run = _compiled(steps, delay, len(rec) > 0, (budget, _BLOCK, _BLOCKS_AT_ONCE), strategy)
    counts, raster = run(net, keys, stim_idx, r_steps, jnp.asarray(p, dtype), ext,
                         jnp.asarray(rec), jnp.asarray([a, b, c], dtype), csr)  # fmt: skip
    counts = np.asarray(counts)
    raster = np.asarray(raster) if len(rec) else None
    return {"counts": counts, "rate_hz": counts / duration_s, "raster": raster, "dt_s": dt_s,
            "steps": steps}  # fmt: skip


def _shard_trials(keys):
    """Spread the trials over this host's devices (several GPUs) when they divide evenly.

    The trials' axis is sharded (``NamedSharding`` over a one-axis mesh); the network is
    replicated, so every device runs its own trials with no communication. One device (a CPU,
    one GPU), or a trial count the devices do not divide, keeps them together.
    """
    devices = jax.devices()
    if len(devices) < 2 or keys.shape[0] % len(devices):
        return keys
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.asarray(devices), ("trial",))
    return jax.device_put(keys, NamedSharding(mesh, PartitionSpec("trial")))


def _sorted_by_pre(net: LIFNetwork):
    """Return ``net`` with its edges sorted by presynaptic neuron, and the CSR row offsets.

    :func:`lif_from_connectome` already sorts them; a network built by hand is sorted here
    (a stable sort: same sums).
    """
    pre = np.asarray(net.pre)
    if pre.size and np.any(pre[1:] < pre[:-1]):
        order = np.argsort(pre, kind="stable")
        net = eqx.tree_at(lambda m: (m.pre, m.post, m.w_mV), net,
                          (net.pre[order], net.post[order], net.w_mV[order]))  # fmt: skip
        pre = pre[order]
    return net, np.searchsorted(pre, np.arange(net.n + 1), side="left")


@functools.lru_cache(maxsize=16)
def _compiled(steps: int, delay: int, keep: bool, events: tuple[int, int, int], strategy: str):
    @eqx.filter_jit
    def run(net, keys, stim_idx, r_steps, p, ext, rec, abc, csr):
        def one(k):
            return _trial(net, k, stim_idx, r_steps, p, ext, rec, abc, csr, steps, delay, keep,
                          events)  # fmt: skip

        return jax.vmap(one)(keys) if strategy == "vmap" else jax.lax.map(one, keys)

    return run


#: Neurons per block of the event-driven step's spike search, and blocks searched at once.
_BLOCK = 64
_BLOCKS_AT_ONCE = 64


def _deliver_events(net, spike, csr, events, g, open_):
    """Return ``g`` plus the input of ``spike``'s neurons to the ``open_`` ones, by event.

    Only the spikers' out-edges are read.

    ``events`` is ``(budget, block, at_once)``. Spikers are found in two levels, so no step
    runs a prefix sum over the whole network (on a CPU that costs more than the rest of the
    step at 10⁵ neurons): blocks of ``block`` neurons holding a spike (one reduction), then, for
    up to ``at_once`` such blocks at a time, their spikers' edges are numbered by a cumulative
    sum of out-degrees; each chunk of ``budget`` numbers finds its spiker by binary search and
    its edge from the CSR row offset. Both levels are ``while_loop`` s that run as
    many rounds as the step needs (none when nobody spikes), so nothing is ever dropped.
    """
    start, degree = csr
    budget, block, at_once = events
    n = net.n
    n_blocks = -(-n // block)
    at_once = min(n_blocks, at_once)
    padded = jnp.pad(spike, (0, n_blocks * block - n))
    active = jnp.any(padded.reshape(n_blocks, block), axis=1)
    block_ids = jnp.arange(n_blocks, dtype=jnp.int32)
    within = jnp.arange(block, dtype=jnp.int32)
    lanes = jnp.arange(budget, dtype=jnp.int32)
    w = net.w_mV.astype(g.dtype)

    def blocks_left(carry):
        return jnp.any(active & (block_ids >= carry[0]))

    def some_blocks(carry):
        cursor, acc = carry
        chosen = jnp.nonzero(active & (block_ids >= cursor), size=at_once, fill_value=n_blocks)[0]
        chosen = chosen.astype(jnp.int32)
        cand = (chosen[:, None] * block + within).ravel()
        real = cand < n
        cand = jnp.where(real, cand, 0)
        count = jnp.where(real & spike[cand], degree[cand], 0)
        end = jnp.cumsum(count)
        total = end[-1]
        first = end - count

        def edges(inner):
            base, acc = inner
            pos = base + lanes
            owner = jnp.minimum(jnp.searchsorted(end, pos, side="right"), cand.shape[0] - 1)
            valid = pos < total
            edge = jnp.where(valid, start[cand[owner]] + pos - first[owner], 0)
            target = net.post[edge]
            acc = acc.at[target].add(jnp.where(valid & open_[target], w[edge], 0.0))
            return base + budget, acc

        _, acc = jax.lax.while_loop(lambda c: c[0] < total, edges,
                                    (jnp.asarray(0, jnp.int32), acc))  # fmt: skip
        return chosen[-1] + 1, acc

    _, g = jax.lax.while_loop(blocks_left, some_blocks, (jnp.asarray(0, jnp.int32), g))
    return g


def _trial(net, key, stim_idx, r_steps, p, ext, rec, abc, csr, steps, delay, keep, events):
    """One trial, as a scan over rounds of ``delay`` steps.

    A spike reaches its targets exactly ``delay`` steps later, i.e. at the same step of the
    next round, so each round reads the previous round's spikes (a scan input) and writes its
    own (a scan output): no ring buffer is read and rewritten in place every step (XLA copies
    such a buffer each step on a CPU: at 10⁵ neurons that was half the step's cost). Counts are
    summed once per round. The last round may run past ``steps``; its extra steps are neither
    counted nor returned.
    """
    n = net.n
    a, b, c = abc[0], abc[1], abc[2]
    dtype = abc.dtype
    rounds = -(-steps // delay)
    w_poi = jnp.asarray(net.w_poi_mV, dtype)

    def step(carry, inputs):
        v, g, rem = carry
        k, arriving, kicks = inputs
        rem = jnp.maximum(rem - 1, 0)  # steps of refractoriness left
        free = rem == 0  # Brian2's not_refractory
        v_new = net.v_0_mV + a * (v - net.v_0_mV) + c * g
        v, g = jnp.where(free, v_new, v), jnp.where(free, b * g, g)
        spike = (v > net.v_th_mV) & free
        rem = jnp.where(spike, r_steps, rem)
        open_ = free & ~spike  # refractory neurons (this step's spikers too) take no input
        g = jnp.where(spike, 0.0, g)
        if csr is not None:  # the spikes of ``delay`` steps ago arrive now
            g = _deliver_events(net, arriving, csr, events, g, open_)
        else:
            w = jnp.where(arriving[net.pre] & open_[net.post], net.w_mV.astype(dtype), 0.0)
            g = g.at[net.post].add(w)
        if kicks is not None:
            v = v + jnp.where(open_ & kicks, w_poi, 0.0)
        else:  # Poisson spikes, drawn for the driven neurons only
            drawn = jax.random.bernoulli(jax.random.fold_in(key, k), p, stim_idx.shape)
            v = v.at[stim_idx].add(jnp.where(open_[stim_idx] & drawn, w_poi, 0.0))
        v = jnp.where(spike, net.v_rst_mV, v)
        return (v, g, rem), spike

    def one_round(carry, inputs):
        state, previous, count = carry
        r, kicks = inputs
        ks = r * delay + jnp.arange(delay, dtype=jnp.int32)
        state, spikes = jax.lax.scan(step, state, (ks, previous, kicks))
        spikes_in_run = spikes & (ks < steps)[:, None]
        count = count + jnp.sum(spikes_in_run, axis=0, dtype=jnp.int32)
        return (state, spikes, count), (spikes_in_run[:, rec] if keep else None)

    state = (jnp.full(n, net.v_0_mV, dtype), jnp.zeros(n, dtype), jnp.zeros(n, r_steps.dtype))
    carry = (state, jnp.zeros((delay, n), bool), jnp.zeros(n, jnp.int32))
    kicks = None if ext is None else ext.reshape(rounds, delay, n)
    (_, _, count), raster = jax.lax.scan(
        one_round, carry, (jnp.arange(rounds, dtype=jnp.int32), kicks)
    )
    if keep:
        raster = raster.reshape(rounds * delay, -1)[:steps]
    return count, raster
