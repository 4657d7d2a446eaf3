r"""The 95 body-wall muscles: from motor-neuron activity to the body's preferred curvature.

Each muscle *m* is driven by the neurons that synapse onto it (Cook et al. 2019, the atlas's
``neuromuscular`` dataset), excitatory where the neuron is cholinergic (nicotinic receptors at
the neuromuscular junction) and inhibitory where it is GABAergic and not cholinergic
(UNC-49; Wang et al. 2024 for the transmitters). Its drive is the signed fraction of its
excitatory synapses that are active,

.. math:: d_m = \frac{\sum_n W^{+}_{mn} s_n - \sum_n W^{-}_{mn} s_n}{\sum_n W^{+}_{mn}},

with neuron activities :math:`s_n \in [0, 1]`, and its activation follows with a time constant
(0.1 s, Boyle, Berri & Cohen 2012): :math:`\tau \dot a_m = \mathrm{clip}(G (d_m + T), 0, 1) - a_m`,
with the drive gain :math:`G` and a tonic drive :math:`T` in the drive's units (1: as if every
excitatory synapse of the muscle were active; 0 unless a drug acts on the muscle:
:func:`~digiworm.body.neuromuscular_perturbation`).
Neurons of other transmitters (glutamate, dopamine, …) and the neuron–muscle gap junctions are
not coupled yet; :attr:`Muscles.unsigned` lists the senders left out.

The muscles of one row (head 0 to tail 1, 24 rows) bend the joints in that row: the preferred
curvature is :math:`\kappa^0 = \kappa_{max}\,(\bar a_{ventral} - \bar a_{dorsal})`, each side's
mean over its left and right muscle (ventral bending counted positive). :math:`\kappa_{max}`,
the curvature of a body bent by one side's full activation, is an *assumed* parameter. The
two sides' shared activation :math:`c = \min(\bar a_{ventral}, \bar a_{dorsal})` (their
co-contraction) stiffens the joint: its bending stiffness is :math:`1 + s\,c` times the
passive one, so a co-contracted body holds itself straight (muscle tone sets the body's
stiffness: Petzold et al. 2011 Biophys J 100:1977). :math:`s` (``tone_stiffening``) is
*assumed*.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._params import check_parameters
from ._rod import Body

__all__ = ["Muscles", "muscles_from_atlas"]

ROWS = 24


class Muscles(eqx.Module):
    """Body-wall muscles: neuromuscular weights, activation dynamics, bending (see module)."""

    excitatory: jax.Array
    """Cholinergic synapse counts ``(muscle, neuron)``."""
    inhibitory: jax.Array
    """GABAergic (non-cholinergic) synapse counts ``(muscle, neuron)``."""
    side: jax.Array
    """+1 for a ventral muscle, −1 for a dorsal one ``(muscle,)``."""
    row: jax.Array
    """Row of each muscle, 1 (head) to 24 (tail) ``(muscle,)``."""
    names: tuple[str, ...] = eqx.field(static=True)
    neurons: tuple[str, ...] = eqx.field(static=True)
    unsigned: tuple[str, ...] = eqx.field(static=True, default=())
    tau_s: float = 0.1
    max_curvature_per_mm: float = 12.0
    drive_gain: float = 1.0
    """Multiplies the drive before it saturates at 1 (*assumed*; 1: all excitatory synapses
    of a muscle must be active to drive it fully)."""
    excitatory_gain: float = 1.0
    """Scales cholinergic transmission at the junctions (receptors lost, ACh persisting)."""
    inhibitory_gain: float = 1.0
    """Scales GABAergic transmission at the junctions (0: GABA or its receptor lost)."""
    tonic: float = 0.0
    """Drive added to every muscle's drive whatever the neurons do (an agonist at the muscle), in
    the drive's units: 1 is as much as all its excitatory synapses active."""
    tone_stiffening: float = 0.0
    """How much full co-contraction stiffens a joint: its bending stiffness becomes
    ``1 + tone_stiffening × min(ventral, dorsal activation)`` times the passive one (0: off;
    the worm's value is *assumed*, :data:`~digiworm.body.WORM_MUSCLES`)."""

    #: Evidence level of each parameter (DESIGN: assumed numbers say so).
    evidence = {
        "weights": "measured (EM synapse counts, Cook et al. 2019)",
        "signs": "literature (cholinergic excitatory, GABAergic inhibitory at the NMJ)",
        "tau_s": "literature (Boyle, Berri & Cohen 2012: 0.1 s)",
        "max_curvature_per_mm": "assumed (12/mm: full one-sided contraction)",
        "drive_gain": "assumed (1)",
        "tonic": "a drug's (neuromuscular_perturbation gives its evidence)",
        "tone_stiffening": "assumed (direction: Petzold et al. 2011; no measured scale)",
    }

    def __check_init__(self):
        check_parameters(
            self,
            positive=("tau_s", "max_curvature_per_mm"),
            nonnegative=(
                "drive_gain",
                "excitatory_gain",
                "inhibitory_gain",
                "tonic",
                "tone_stiffening",
            ),  # fmt: skip
        )

    def drive(self, activity):
        """Signed drive of every muscle from neuron activities ``(neuron,)`` in [0, 1]."""
        exc = self.excitatory_gain * (self.excitatory @ activity)
        inh = self.inhibitory_gain * (self.inhibitory @ activity)
        total = jnp.maximum(self.excitatory.sum(axis=1), 1e-12)
        return (exc - inh) / total

    def step(self, activation, activity, dt_s):
        """Advance the activations ``(muscle,)`` by ``dt_s`` (exact for a held drive)."""
        target = jnp.clip(self.drive_gain * (self.drive(activity) + self.tonic), 0.0, 1.0)
        decay = jnp.exp(-dt_s / self.tau_s)
        return target + (activation - target) * decay

    def side_maps(self, body: Body) -> jax.Array:
        """Array ``(2, joint, muscle)``: each joint's ventral, then dorsal, mean of its row."""
        u = body.joint_positions()
        rows = np.clip(np.floor(u * ROWS).astype(int) + 1, 1, ROWS)
        row, side = np.asarray(self.row), np.asarray(self.side)
        out = np.zeros((2, u.size, row.size))
        for j, r in enumerate(rows):
            for k, s in enumerate((1.0, -1.0)):
                members = np.nonzero((row == r) & (side == s))[0]
                out[k, j, members] = 1.0 / max(members.size, 1)
        return jnp.asarray(out)

    def bending(self, activation, side_maps):
        """Return the preferred curvature (1/mm) and the tone's stiffening at every joint.

        ``side_maps`` is :meth:`side_maps`'s; the stiffening is what the body's step takes
        as ``tone`` (``tone_stiffening`` × the smaller of the two sides' activations).
        """
        ventral, dorsal = side_maps @ activation
        tone = self.tone_stiffening * jnp.minimum(ventral, dorsal)
        return self.max_curvature_per_mm * (ventral - dorsal), tone


def muscles_from_atlas(atlas, **params) -> Muscles:
    """Build :class:`Muscles` from the atlas's neuromuscular synapses and transmitters.

    ``params`` set ``tau_s``, ``max_curvature_per_mm`` and ``drive_gain``.
    """
    w = atlas.neuromuscular("chemical").fillna(0.0)
    names = list(atlas.names)
    counts = np.asarray(w.transpose("muscle", "neuron").sel(neuron=names).values, dtype=float)
    transmitter = atlas.neurons.loc[names, "transmitter"].fillna("").astype(str)
    cholinergic = np.array(["Acetylcholine" in t for t in transmitter])
    gabaergic = np.array(["GABA" in t for t in transmitter]) & ~cholinergic
    sends = counts.sum(axis=0) > 0
    unsigned = tuple(n for n, s, c, g in zip(names, sends, cholinergic, gabaergic)
                     if s and not (c or g))  # fmt: skip
    return Muscles(
        excitatory=jnp.asarray(counts * cholinergic),
        inhibitory=jnp.asarray(counts * gabaergic),
        side=jnp.asarray(np.where(w.side.values == "ventral", 1.0, -1.0)),
        row=jnp.asarray(w.row.values.astype(int)),
        names=tuple(str(m) for m in w.muscle.values),
        neurons=tuple(names),
        unsigned=unsigned,
        **params,
    )
