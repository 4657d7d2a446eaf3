"""A synthetic connectome with the whole fly brain's size and statistics, for benchmarks.

FlyWire's connectome (Dorkenwald et al. 2024 Nature 634:124) cannot be shipped or fetched
here, so benchmarks that need its size use a graph drawn to match what matters for the cost
and the dynamics of a simulation: the number of neurons, the number of connections, heavy
tailed in- and out-degrees, the synapse counts per connection and the share of inhibitory
connections. The targets (:data:`FLYWIRE_TARGETS`) are recalled figures of the public
release used by Shiu et al. 2024 (Nature 634:210); they are generator settings, not
measurements, and say so in every summary.

Construction (a Chung–Lu-type graph): each neuron draws an out- and an in-propensity from a
log-normal; connections are drawn with probability proportional to pre's out-propensity times
post's in-propensity, self-connections and duplicates removed, and topped up until the target
count is reached. Synapse counts are 1 + a rounded log-normal with the target mean; a neuron is
inhibitory (all its outgoing connections) with the target probability. Fixed seed: the same
graph every time.
"""

from __future__ import annotations

import math

import numpy as np

from .._errors import DigiwormError
from ._connectome import Connectome

__all__ = ["FLYWIRE_TARGETS", "synthetic_flywire"]

#: What the synthetic graph matches (recalled, not re-measured: *assumed* for the generator).
FLYWIRE_TARGETS = {
    "neurons": 138_639,  # Completeness_783.csv of Shiu et al. 2024
    "connections": 15_091_983,  # their Connectivity_783 (pairs with >= 1 synapse)
    "mean_synapses_per_connection": 3.6,  # about 54.5M synapses over the pairs
    "inhibitory_neuron_fraction": 0.3,  # GABA and glutamate neurons, treated as inhibitory
    "degree_lognormal_sigma": 1.0,  # spread of the propensities (heavy tails)
    "evidence": "assumed: recalled figures of the FlyWire v783 release, not measured here",
}


def synthetic_flywire(scale: float = 1.0, seed: int = 0, *, targets: dict | None = None):
    """Return a :class:`~digiworm.brains.Connectome` matched to FlyWire's statistics.

    ``scale`` multiplies the number of neurons and of connections together (the mean degree,
    about 109, is kept): 1 is the whole brain (15M connections, about 30 s and 1 GB to build
    here), 0.01 a 1,386-neuron graph for tests.
    """
    t = {**FLYWIRE_TARGETS, **(targets or {})}
    if not (math.isfinite(scale) and 0 < scale <= 1):
        raise DigiwormError(f"scale must be in (0, 1]; got {scale}")
    n = max(2, round(t["neurons"] * scale))
    m = min(round(t["connections"] * scale), n * (n - 1) // 2)
    rng = np.random.default_rng(seed)
    sigma = float(t["degree_lognormal_sigma"])
    p_out = rng.lognormal(0.0, sigma, n)
    p_in = rng.lognormal(0.0, sigma, n)
    p_out /= p_out.sum()
    p_in /= p_in.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < m:  # draw, drop self loops and repeats, top up
        k = int(1.1 * (m - len(keys))) + 16
        pre = rng.choice(n, size=k, p=p_out)
        post = rng.choice(n, size=k, p=p_in)
        new = (pre.astype(np.int64) * n + post)[pre != post]
        keys = np.unique(np.concatenate([keys, new]))
    keys = rng.permutation(keys)[:m]
    keys.sort()  # sorted by pre, then post
    pre, post = (keys // n).astype(np.int32), (keys % n).astype(np.int32)
    mean_extra = float(t["mean_synapses_per_connection"]) - 1.0
    s = 0.9  # spread of the counts' log-normal (heavy tailed, a few strong connections)
    counts = 1.0 + np.round(rng.lognormal(math.log(mean_extra) - s * s / 2, s, m))
    inhibitory = rng.random(n) < float(t["inhibitory_neuron_fraction"])
    weight = np.where(inhibitory[pre], -counts, counts)
    ids = np.arange(n, dtype=np.int64)
    types = np.where(inhibitory, "inhibitory", "excitatory")
    return Connectome(ids=ids, types=types, pre=pre, post=post, weight=weight,
                      electrical=np.zeros(m, dtype=bool),
                      source=f"synthetic FlyWire-like graph (scale {scale:g}, seed {seed})",
                      notes=(str(t["evidence"]),))  # fmt: skip
