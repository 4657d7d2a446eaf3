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
Coupling is a ``segment_sum`` over the edges: cost and memory grow with the number of
connections, not N².
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError

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
    record : array of int, optional
        Neurons whose every spike is returned (``(trials, steps, len(record))`` bool).

    Returns
    -------
    dict with ``counts`` ``(trials, n)`` int, ``rate_hz`` ``(trials, n)``, ``raster`` (or
    None), ``dt_s`` and ``steps``.
    """
    n = net.n
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
    r_steps = jnp.where(jnp.asarray(drive), 0, refractory)
    ext = None if input_spikes is None else jnp.asarray(input_spikes)
    keys = _shard_trials(keys)
    run = _compiled(steps, delay, len(rec) > 0)
    counts, raster = run(net, keys, jnp.asarray(drive), r_steps, jnp.asarray(p, dtype),
                         ext, jnp.asarray(rec), jnp.asarray([a, b, c], dtype))  # fmt: skip
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


@functools.lru_cache(maxsize=16)
def _compiled(steps: int, delay: int, keep: bool):
    @eqx.filter_jit
    def run(net, keys, drive, r_steps, p, ext, rec, abc):
        return jax.vmap(lambda k: _trial(net, k, drive, r_steps, p, ext, rec, abc, steps,
                                         delay, keep))(keys)  # fmt: skip

    return run


def _trial(net, key, drive, r_steps, p, ext, rec, abc, steps, delay, keep):
    n = net.n
    a, b, c = abc[0], abc[1], abc[2]
    dtype = abc.dtype
    v0 = jnp.full(n, net.v_0_mV, dtype)
    state = (
        v0,
        jnp.zeros(n, dtype),  # g
        jnp.full(n, -(10**6), jnp.int32),  # step of the last spike
        jnp.zeros((delay, n), dtype),  # input to g scheduled for the coming steps
        jnp.zeros(n, jnp.int32),  # spike counts
    )

    def step(carry, k):
        v, g, last, queue, count = carry
        free = (k - last) >= r_steps  # not refractory (Brian2's not_refractory)
        v_new = net.v_0_mV + a * (v - net.v_0_mV) + c * g
        v, g = jnp.where(free, v_new, v), jnp.where(free, b * g, g)
        spike = (v > net.v_th_mV) & free
        last = jnp.where(spike, k, last)
        slot = k % delay
        open_ = free & ~spike  # refractory neurons (this step's spikers too) take no input
        g = g + jnp.where(open_, queue[slot], 0.0)
        if ext is not None:
            kicks = ext[k]
        else:
            kicks = jax.random.bernoulli(jax.random.fold_in(key, k), p, (n,)) & drive
        v = v + jnp.where(open_ & kicks, net.w_poi_mV, 0.0)
        syn = jax.ops.segment_sum(net.w_mV.astype(dtype) * spike[net.pre].astype(dtype),
                                  net.post, num_segments=n)  # fmt: skip
        queue = queue.at[slot].set(syn)
        v = jnp.where(spike, net.v_rst_mV, v)
        g = jnp.where(spike, 0.0, g)
        out = spike[rec] if keep else None
        return (v, g, last, queue, count + spike), out

    (_, _, _, _, count), raster = jax.lax.scan(step, state, jnp.arange(steps, dtype=jnp.int32))
    return count, raster
