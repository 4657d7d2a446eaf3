r"""Conductance models of any neuron from its CeNGEN expression.

For neuron *n* and library channel *c* (:mod:`._channels`) the maximal conductance is

.. math::

    \bar g_{n,c} = k_c \, T_{n,c}^{\,b}, \qquad T_{n,c} = \sum_{\text{genes } x \text{ of } c}
    \mathrm{TPM}_{n,x} \;\; [\text{partner expressed}],

where :math:`T` sums the TPM of the genes that make the channel (``CHANNELS[c].genes``: e.g.
IRK irk-1 + irk-2 + irk-3; KCNL kcnl-1..4; NCA unc-77 (nca-1) + nca-2; KVS-1 kinetics also for
kvs-2, EGL-36's for shw-3, KQT-3's for kqt-1/2), a SLO complex counts only where its
Ca²⁺-channel partner is expressed too, and :math:`k_c` (nS per TPM^b) is calibrated on the
published reference neurons (a reference built with another kinetic variant of a channel, e.g.
the 2024 SHL-1, counts for it) as the geometric mean of :math:`\bar g_{ref}/T_{ref}^b` over the
references where both are nonzero. A channel no reference calibrates gets the median scale of
the calibrated ones (the *prior*; listed in :attr:`ExpressionMap.prior`). The exponent
:math:`b` is 1 (conductance proportional to transcript) unless given. Leak conductance scales
with capacitance (the references' geometric-mean leak per pF); capacitance and Ca²⁺ pool
volume default to the references' geometric means (the volume over the references that use
the 2019 pool, which every expression-built cell has), since the atlas has no soma sizes.

That is the *ratio* calibration (:func:`calibrate_expression_map`). :func:`fit_expression_map`
starts from it and fits the scales, the leak and its reversal to the published models' I–V and
short current clamps instead; the map so fitted to all nine is shipped, and
:func:`cells_from_expression` uses it by default (:mod:`._expression_maps`).

Every number is a parameter of :class:`ExpressionMap`, so the mapping can be recalibrated or
replaced (the cells it builds hold their conductances as arrays, which a fit can then adjust).
Expression is per CeNGEN class, so the members of a class get the same model. Every
expression-built cell has the library's leak reversal (−80 mV); the 2024 references' own leak
reversals (−37 to −50 mV) enter only through their leak conductance per pF.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import DigiwormError, UnknownNameError
from ._channels import CHANNELS
from ._conductance import (
    ConductanceCell,
    _partner,
    cell_from_conductances,
    resting_potentials,
    run_current,
)
from ._reference_cells import REFERENCE_CELLS, ReferenceCell

__all__ = [
    "ExpressionMap",
    "calibrate_expression_map",
    "cells_from_expression",
    "channel_tpm",
    "fit_expression_map",
    "fit_neuron_effects",
]


@dataclass(frozen=True)
class ExpressionMap:
    """TPM → maximal conductance (see the module docstring)."""

    scale_nS: dict[str, float]
    exponent: float
    leak_nS_per_pF: float
    c_pF: float
    vol_um3: float
    threshold: int
    calibrated_on: tuple[str, ...]
    prior: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = field(default=())
    e_leak_mV: float = -80.0
    """Leak reversal of every cell built with this map."""
    method: str = "ratio"
    """How the scales were calibrated: ``ratio`` (geometric mean of published conductance over
    TPM) or ``fitted`` (:func:`fit_expression_map`)."""
    neuron_effects: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per calibrating neuron, how its published model departs from the shared map
    (:func:`fit_neuron_effects`): the log factor of each expressed channel's conductance and of
    the leak (``leak``), and the shift of the leak reversal (``e_leak_mV``). Empty unless
    fitted."""

    def to_dict(self) -> dict:
        """Return the map as plain JSON-able values (:meth:`from_dict` reads it back)."""
        return {
            "scale_nS": dict(self.scale_nS),
            "exponent": self.exponent,
            "leak_nS_per_pF": self.leak_nS_per_pF,
            "c_pF": self.c_pF,
            "vol_um3": self.vol_um3,
            "threshold": self.threshold,
            "calibrated_on": list(self.calibrated_on),
            "prior": list(self.prior),
            "conflicts": list(self.conflicts),
            "e_leak_mV": self.e_leak_mV,
            "method": self.method,
            "neuron_effects": {n: dict(e) for n, e in self.neuron_effects.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> ExpressionMap:
        """Rebuild a map written by :meth:`to_dict`; an unknown channel is refused by name."""
        unknown = sorted(set(data["scale_nS"]) - set(CHANNELS))
        if unknown:
            raise UnknownNameError("channel", unknown[0], CHANNELS)
        return cls(
            scale_nS={str(c): float(v) for c, v in data["scale_nS"].items()},
            exponent=float(data["exponent"]),
            leak_nS_per_pF=float(data["leak_nS_per_pF"]),
            c_pF=float(data["c_pF"]),
            vol_um3=float(data["vol_um3"]),
            threshold=int(data["threshold"]),
            calibrated_on=tuple(data["calibrated_on"]),
            prior=tuple(data.get("prior", ())),
            conflicts=tuple(data.get("conflicts", ())),
            e_leak_mV=float(data.get("e_leak_mV", -80.0)),
            method=str(data.get("method", "ratio")),
            neuron_effects={
                str(n): {str(k): float(v) for k, v in e.items()}
                for n, e in data.get("neuron_effects", {}).items()
            },
        )

    def conductances(self, tpm: dict[str, float], c_pF: float | None = None) -> dict[str, float]:
        """Return ``{channel: g_nS}`` from summed TPM per channel (:func:`channel_tpm`)."""
        c = self.c_pF if c_pF is None else c_pF
        g = {ch: self.scale_nS[ch] * t**self.exponent for ch, t in tpm.items() if t > 0}
        g["leak"] = self.leak_nS_per_pF * c
        return g


def _cengen_genes(atlas) -> set[str]:
    return {str(g) for g in atlas.dataset("cengen").gene.values}


def channel_tpm(atlas, neuron: str, threshold: int = 2) -> dict[str, float]:
    """Return the summed TPM of each library channel's genes in ``neuron`` (0 where not detected).

    Genes CeNGEN does not profile are left out of the sums. A SLO complex is 0 unless its
    Ca²⁺-channel partner is detected too.
    """
    neuron = atlas.neuron(neuron)
    known = _cengen_genes(atlas)
    cls = atlas.neurons.loc[neuron, "cengen_class"]
    if not cls:
        raise DigiwormError(f"{neuron} has no CeNGEN expression profile; no conductance model")
    matrix = atlas.expression_matrix(threshold).sel(cengen_class=cls)
    by_gene = dict(zip(matrix["gene"].to_numpy().tolist(), matrix.to_numpy().tolist()))

    def tpm(gene: str) -> float:  # a dict lookup: xarray's `in` and .sel cost ~1 ms each
        gene_id = atlas.gene(gene) if gene in known else None
        value = by_gene.get(gene_id, 0.0)
        return 0.0 if not np.isfinite(value) else float(value)

    out = {}
    for name, ch in CHANNELS.items():
        if name == "leak" or ch.variant_of is not None:  # one kinetic variant per channel
            continue
        total = sum(tpm(g) for g in ch.genes if g in known)
        if ch.requires and not all(tpm(g) > 0 for g in ch.requires):
            total = 0.0
        out[name] = total
    return out


def calibrate_expression_map(
    atlas,
    references: tuple[str, ...] | None = None,
    *,
    threshold: int = 2,
    exponent: float = 1.0,
) -> ExpressionMap:
    """Calibrate :class:`ExpressionMap` on published reference neurons (default: all).

    ``conflicts`` lists (reference, channel) pairs where the model has the channel but CeNGEN
    detects none of its genes, or the reverse: these carry no calibration information and show
    how loosely expression and published conductances agree.
    """
    refs = tuple(REFERENCE_CELLS) if references is None else tuple(references)
    for r in refs:
        if r not in REFERENCE_CELLS:
            raise UnknownNameError("reference neuron model", r, REFERENCE_CELLS)
    if not (math.isfinite(exponent) and exponent > 0):
        raise DigiwormError(f"exponent must be a finite number > 0; got {exponent}")
    logs: dict[str, list[float]] = {
        c: [] for c, ch in CHANNELS.items() if c != "leak" and ch.variant_of is None
    }
    variants = {c: [v for v, ch in CHANNELS.items() if ch.variant_of == c] for c in logs}
    conflicts = []
    for r in refs:
        ref: ReferenceCell = REFERENCE_CELLS[r]
        tpm = channel_tpm(atlas, ref.neuron, threshold)
        for c in logs:
            # a reference built with another kinetic variant of c calibrates c's scale
            g = ref.g_nS.get(c, 0.0) + sum(ref.g_nS.get(v, 0.0) for v in variants[c])
            t = tpm[c]
            if g > 0 and t > 0:
                logs[c].append(math.log(g) - exponent * math.log(t))
            elif g > 0 or t > 0:
                conflicts.append(f"{r}:{c} (g {g:g} nS, {t:.0f} TPM)")
    scale = {c: math.exp(float(np.mean(v))) for c, v in logs.items() if v}
    if not scale:
        raise DigiwormError(f"no channel calibrates on {refs}: expression and models disjoint")
    median = float(np.median(list(scale.values())))
    prior = tuple(c for c in logs if c not in scale)
    scale.update({c: median for c in prior})

    def leak_per_pF(r):
        return REFERENCE_CELLS[r].g_nS["leak"] / REFERENCE_CELLS[r].c_pF

    def geo(values):
        return math.exp(float(np.mean(np.log(values))))

    return ExpressionMap(
        scale_nS=scale,
        exponent=float(exponent),
        leak_nS_per_pF=geo([leak_per_pF(r) for r in refs]),
        c_pF=geo([REFERENCE_CELLS[r].c_pF for r in refs]),
        # the pool volume means something only for references with the 2019 pool (the 2024
        # motor neurons' shell and AIY's fixed Ca²⁺ are other pool models)
        vol_um3=geo(
            [REFERENCE_CELLS[r].vol_um3 for r in refs if not REFERENCE_CELLS[r].ca_pool]
            or [REFERENCE_CELLS[r].vol_um3 for r in refs]
        ),
        threshold=threshold,
        calibrated_on=refs,
        prior=prior,
        conflicts=tuple(conflicts),
    )


def cells_from_expression(
    atlas,
    neurons,
    mapping: ExpressionMap | None = None,
    *,
    neuron_effects: bool = True,
    dtype=None,
) -> ConductanceCell:
    """Build conductance models of ``neurons`` (names or one name) from their expression.

    ``mapping`` defaults to the shipped map fitted to all nine published models
    (:func:`~digiworm.models.fitted_expression_map`); pass
    ``calibrate_expression_map(atlas)`` for the conductance-over-TPM ratio map.

    A neuron the map has a neuron effect for (:func:`fit_neuron_effects`: the shipped map has
    one for each published model's neuron) gets it, and so does the rest of its CeNGEN class
    (the mean effect where the class has several); ``neuron_effects=False`` builds every neuron
    from the shared map alone, as a neuron predicted held out.
    """
    if mapping is None:
        from ._expression_maps import fitted_expression_map

        mapping = fitted_expression_map()
    names = [neurons] if isinstance(neurons, str) else list(neurons)
    names = [atlas.neuron(n) for n in names]
    per_cell = [mapping.conductances(channel_tpm(atlas, n, mapping.threshold)) for n in names]
    e_leak = np.full(len(names), mapping.e_leak_mV)
    if neuron_effects:
        for k, n in enumerate(names):
            effect = _neuron_effect(atlas, mapping, n)
            for c in per_cell[k]:
                per_cell[k][c] *= math.exp(effect.get(c, 0.0))
            e_leak[k] += effect.get("e_leak_mV", 0.0)
    channels = sorted({c for g in per_cell for c in g}, key=list(CHANNELS).index)
    for c in list(channels):  # a complex needs its partner channel present in the cell set
        partner = _partner(c)
        if partner is not None and partner not in channels:
            channels.append(partner)
    g = {c: np.array([cell.get(c, 0.0) for cell in per_cell]) for c in channels}
    return cell_from_conductances(
        tuple(names),
        g,
        c_pF=mapping.c_pF,
        vol_um3=mapping.vol_um3,
        e_leak_mV=e_leak,
        source=f"CeNGEN expression (threshold {mapping.threshold}) mapped to conductance, "
        f"{'fitted to' if mapping.method == 'fitted' else 'calibrated on'} "
        f"{', '.join(mapping.calibrated_on)}",
        dtype=dtype,
    )


def _neuron_effect(atlas, mapping: ExpressionMap, neuron: str) -> dict[str, float]:
    """Return the map's effect for ``neuron``.

    That is its own, else its CeNGEN class's (the mean over the class's neurons that have one),
    else none.
    """
    if neuron in mapping.neuron_effects:
        return mapping.neuron_effects[neuron]
    cls = atlas.neurons["cengen_class"]
    same = [n for n in mapping.neuron_effects if cls.get(n) == cls.get(neuron)]
    if not same:
        return {}
    keys = {k for n in same for k in mapping.neuron_effects[n]}
    return {k: float(np.mean([mapping.neuron_effects[n].get(k, 0.0) for n in same])) for k in keys}


#: The short current clamps of the transient fit: rest, step, after (ms); integration step (ms).
TRANSIENT_PROTOCOL_MS = (50.0, 150.0, 50.0)
TRANSIENT_DT_MS = 0.5


def _short_clamps(cells, amps, rest_mV):
    """Voltage ``(sample, condition, cell)`` of :data:`TRANSIENT_PROTOCOL_MS` at 1 ms samples.

    ``amps`` (condition, cell): each cell's step currents, pA; each starts at steady state at
    ``rest_mV``.
    """
    pre, during, post = TRANSIENT_PROTOCOL_MS
    n = int(round((pre + during + post) / TRANSIENT_DT_MS))
    t = (np.arange(n) + 0.5) * TRANSIENT_DT_MS
    on = jnp.asarray(((t >= pre) & (t < pre + during)).astype(float))
    drive = on[:, None, None] * amps[None]
    y0 = cells.steady_state(rest_mV)
    y0 = jax.tree.map(lambda a: jnp.broadcast_to(a, (amps.shape[0], *a.shape)), y0)
    per_sample = int(round(1.0 / TRANSIENT_DT_MS))
    return run_current(cells, y0, drive, TRANSIENT_DT_MS, per_sample)[1][0]


def _rest_newton(cells, v_mV, iterations: int = 15):
    """Return a zero of each cell's steady-state current near ``v_mV`` (Newton, clipped)."""
    for _ in range(iterations):
        i, slope = jax.jvp(cells.steady_current, (v_mV,), (jnp.ones_like(v_mV),))
        slope = jnp.where(jnp.abs(slope) < 1e-6, 1e-6, slope)
        v_mV = jnp.clip(v_mV - i / slope, FIT_GRID_MV[0], FIT_GRID_MV[-1])
    return v_mV


def _transient_targets(refs, truth, n_currents):
    """Return the step currents, the short clamps of ``truth[r]`` and their rests.

    Each reference ``r`` is stepped at ``n_currents`` of its published protocol's currents,
    evenly spaced from the smallest to the largest, from its (lowest) stable rest; that rest is
    also the starting guess of the fitted cell's.
    """
    amps, traces, rests = [], [], []
    for r in refs:
        cell = truth[r]
        steps = np.unique(np.asarray(REFERENCE_CELLS[r].steps_pA, float))
        pick = np.round(np.linspace(0, steps.size - 1, n_currents)).astype(int)
        a = steps[pick]
        roots = resting_potentials(cell)[0]
        if len(roots) == 0:
            raise DigiwormError(f"{r}'s target cell has no stable rest: cannot fit its clamps")
        rest = float(roots[0])
        traces.append(np.asarray(_short_clamps(cell, jnp.asarray(a[:, None]), jnp.asarray([rest]))))
        amps.append(a)
        rests.append(rest)
    return (
        jnp.asarray(np.stack(amps, axis=1)),
        jnp.asarray(np.concatenate(traces, axis=-1)),
        jnp.asarray(rests),
    )


def _iv_targets(refs, truth):
    """Return the fits' I–V targets: the voltage grid ``(V, reference)``.

    Also the references' steady-state currents on it and each reference's RMS current (its
    scale), all float64.
    """
    target = np.stack(
        [np.asarray(truth[r].steady_current(FIT_GRID_MV[:, None]))[:, 0] for r in refs], axis=1
    )
    norm = np.sqrt(np.mean(target**2, axis=0))
    grid = np.repeat(FIT_GRID_MV[:, None], len(refs), axis=1)
    return jnp.asarray(grid), jnp.asarray(target), jnp.asarray(norm)


def _misfit(cells, iv, transient):
    """Return the fits' data misfit, the relative steady-state I–V error.

    With ``transient`` (:func:`_transient_targets`) it adds the short clamps' voltage error in
    units of 20 mV.
    """
    grid, target, norm = iv
    misfit = jnp.mean(((cells.steady_current(grid) - target) / norm) ** 2)
    if transient is not None:
        amps, v_target, v_start = transient
        rest = jax.lax.stop_gradient(_rest_newton(cells, v_start))
        v = _short_clamps(cells, amps, rest)
        misfit = misfit + jnp.mean(((v - v_target) / 20.0) ** 2)
    return misfit


#: The leak reversal is fitted in units of 10 mV, so one Adam step moves it as far, relatively,
#: as it moves a log scale.
_E_UNIT_MV = 10.0

#: Voltages at which :func:`fit_expression_map` compares steady-state currents, mV.
FIT_GRID_MV = np.arange(-100.0, 40.0 + 1e-9, 1.0)


def fit_expression_map(
    atlas,
    references: tuple[str, ...] | None = None,
    *,
    threshold: int = 2,
    exponent: float = 1.0,
    ridge: float = 0.05,
    steps: int = 400,
    learning_rate: float = 0.05,
    targets: dict | None = None,
    fit_exponent: bool = False,
    transients: bool = True,
    transient_steps: int = 150,
    transient_currents: int = 4,
) -> ExpressionMap:
    r"""Fit the map to the published models' steady-state I–V instead of their conductances.

    Starts from :func:`calibrate_expression_map` on ``references`` and adjusts, by gradient
    descent (Adam) through the closed-form steady-state current of the cells the map builds
    from the references' own expression, every channel's scale :math:`k_c` (in log), the leak
    per pF and the leak reversal shared by all cells, to minimise

    .. math:: \frac{1}{R}\sum_r \overline{\left(\frac{I^{expr}_r(V) - I^{pub}_r(V)}
              {\mathrm{rms}_V\, I^{pub}_r}\right)^2}
              + \lambda\,\overline{(\log k - \log k^{0})^2}

    over :data:`FIT_GRID_MV`, each reference's mismatch relative to its own current scale. The
    steady-state I–V fixes the rests, the input resistance, the end of every long current step
    and the bistability (its stable zeros); it is cheap and smooth, where the transients are
    not. The ridge keeps scales that no reference informs near the ratio calibration.

    ``targets`` maps each reference name to the one-cell model to fit instead of the published
    one (a synthetic truth, in tests). ``fit_exponent`` fits the exponent :math:`b` too (shared
    by every channel): how strongly conductance follows transcript level; each scale is then
    parameterised as the conductance at the channel's typical (geometric-mean) TPM over the
    references, so its prior keeps its meaning while :math:`b` moves.

    ``transients`` (default): after the I–V fit, ``transient_steps`` more Adam steps add the
    voltage misfit (in units of 20 mV) of short current clamps, by gradient through the cells'
    own stepper: from each cell's rest, 50 ms, a 150 ms step, 50 ms after, at 0.5 ms steps
    (:data:`TRANSIENT_PROTOCOL_MS`), at ``transient_currents`` of the published protocol's step
    currents (evenly spaced, its smallest and largest among them), the ridge then pulling
    towards the I–V fit. The steady state fixes where a step ends; this
    fixes how it gets there (RMD's up state, AWCon's peak).
    """
    start = calibrate_expression_map(atlas, references, threshold=threshold, exponent=exponent)
    refs = start.calibrated_on
    if steps < 1 or transient_steps < 1 or not (ridge >= 0 and learning_rate > 0):
        raise DigiwormError(
            "need steps >= 1, transient_steps >= 1, ridge >= 0, learning_rate > 0; got "
            f"{steps}, {transient_steps}, {ridge}, {learning_rate}"
        )
    shortest = min(len(set(REFERENCE_CELLS[r].steps_pA)) for r in refs)
    if not 2 <= transient_currents <= shortest:
        raise DigiwormError(
            f"transient_currents must be from 2 to {shortest} (the fewest step currents of a "
            f"published protocol among {refs}); got {transient_currents}"
        )
    if targets is not None and set(targets) != set(refs):
        raise DigiwormError(f"targets must name exactly the references {refs}; got {set(targets)}")
    with jax.enable_x64(True):  # thread-local; the cells and the fit in float64
        theta = _fit_scales(
            atlas, start, refs, threshold, exponent, ridge, steps, learning_rate, targets,
            fit_exponent, transient_steps if transients else 0, transient_currents,
        )  # fmt: skip
    fitted = list(theta["channels"])
    b = float(math.exp(float(theta["log_b"])))
    scale = dict(start.scale_nS)
    for c, log_g, typical in zip(fitted, np.asarray(theta["log_k"]), theta["typical_tpm"]):
        scale[c] = float(math.exp(log_g)) / typical**b  # g = scale · TPM^b
    return replace(
        start,
        scale_nS=scale,
        exponent=b,
        leak_nS_per_pF=float(math.exp(float(theta["log_leak"]))),
        e_leak_mV=_E_UNIT_MV * float(theta["e_leak"]),
        method="fitted",
    )


def _fit_scales(
    atlas, start, refs, threshold, exponent, ridge, steps, learning_rate, targets, fit_exponent,
    transient_steps, transient_currents,
) -> dict:  # fmt: skip
    """Run the optimisation of :func:`fit_expression_map` (call it with x64 enabled)."""
    import optax

    neurons = [REFERENCE_CELLS[r].neuron for r in refs]
    cell = cells_from_expression(atlas, neurons, start, dtype=jnp.float64)
    tpm = [channel_tpm(atlas, n, threshold) for n in neurons]
    fitted = [c for c in cell.channels if c != "leak"]
    t = {c: np.array([cell_tpm.get(c, 0.0) for cell_tpm in tpm]) for c in fitted}
    # each channel's typical expression over the references (geometric mean where expressed)
    typical = np.array([math.exp(np.mean(np.log(t[c][t[c] > 0]))) if np.any(t[c] > 0) else 1.0
                        for c in fitted])  # fmt: skip
    truth = {r: REFERENCE_CELLS[r].cell() for r in refs} if targets is None else targets
    iv = _iv_targets(refs, truth)
    theta0 = {  # log_k: log conductance at the typical TPM, nS
        "log_k": jnp.asarray(
            [math.log(start.scale_nS[c]) + exponent * math.log(m) for c, m in zip(fitted, typical)]
        ),
        "log_b": jnp.asarray(math.log(exponent)),
        "log_leak": jnp.asarray(math.log(start.leak_nS_per_pF)),
        "e_leak": jnp.asarray(start.e_leak_mV / _E_UNIT_MV),
    }
    rel = np.stack([t[c] for c in fitted]) / typical[:, None]  # (channel, reference)
    expressed = jnp.asarray(rel > 0)
    log_rel = jnp.asarray(np.log(np.where(rel > 0, rel, 1.0)))
    c_pF = float(start.c_pF)

    def build(theta):
        b = jnp.exp(theta["log_b"]) if fit_exponent else exponent
        g = jnp.where(expressed, jnp.exp(theta["log_k"][:, None] + b * log_rel), 0.0)
        g_nS = {c: g[i] for i, c in enumerate(fitted)}
        g_nS["leak"] = jnp.exp(theta["log_leak"]) * c_pF * jnp.ones(len(refs))
        e_leak = _E_UNIT_MV * theta["e_leak"] * jnp.ones(len(refs))
        return _with_conductances(cell, g_nS, e_leak)

    def loss(theta, anchor, transient):
        prior = jnp.mean((theta["log_k"] - anchor) ** 2)
        return _misfit(build(theta), iv, transient) + ridge * prior

    opt = optax.adam(learning_rate)

    @functools.partial(jax.jit, static_argnames=("use_transient",))
    def step(theta, state, anchor, transient, use_transient):
        grad = jax.grad(loss)(theta, anchor, transient if use_transient else None)
        # a parameter set whose clamp blows up gives NaN gradients: take no step on them
        grad = jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
        updates, state = opt.update(grad, state, theta)
        return optax.apply_updates(theta, updates), state

    theta = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), theta0)
    state = opt.init(theta)
    for _ in range(steps):
        theta, state = step(theta, state, theta0["log_k"], None, use_transient=False)
    if transient_steps:
        transient = _transient_targets(refs, truth, transient_currents)
        anchor = theta["log_k"]
        state = opt.init(theta)
        for _ in range(transient_steps):
            theta, state = step(theta, state, anchor, transient, use_transient=True)
    out = {k: np.asarray(v) for k, v in theta.items()}
    return out | {"channels": tuple(fitted), "typical_tpm": typical}


def _with_conductances(cell, g_nS, e_leak):
    """Return ``cell`` with its conductances and leak reversals replaced (differentiably)."""
    return eqx.tree_at(lambda c: (c.g_nS, c.e_leak_mV), cell, (g_nS, e_leak))


def fit_neuron_effects(
    atlas,
    mapping: ExpressionMap,
    *,
    pooling: float = 0.1,
    steps: int = 200,
    transient_steps: int = 300,
    learning_rate: float = 0.05,
    transient_currents: int = 4,
    targets: dict | None = None,
) -> ExpressionMap:
    r"""Fit how each published model departs from the shared map: ``mapping``'s neuron effects.

    The shared map (``mapping``, fitted by :func:`fit_expression_map`) is held fixed; each
    neuron *r* it was calibrated on gets deviations :math:`\delta_r` in the log of every
    conductance it expresses and of its leak, and in its leak reversal (in units of 10 mV):
    :math:`\bar g_{r,c} = k_c T_{r,c}^b e^{\delta_{r,c}}`. They minimise the misfit of
    :func:`fit_expression_map` (the steady-state I–V for ``steps`` Adam steps, then the short
    current clamps too for ``transient_steps``) plus ``pooling`` times their mean square, a
    Gaussian prior that keeps them at 0 where the published model does not say otherwise.

    This is the second stage of an empirical-Bayes hierarchy: the shared map is what predicts a
    neuron no published model describes (fitted so that it does, jointly over the references),
    the effects are what the shared map cannot explain in each of them. Fitting both jointly
    was tried and predicts held-out neurons worse (docs/cells.md). The returned map's
    :attr:`~ExpressionMap.neuron_effects` are keyed by neuron; :func:`cells_from_expression`
    applies them to that neuron's CeNGEN class. ``targets``: as in :func:`fit_expression_map`.
    """
    refs = mapping.calibrated_on
    if not (math.isfinite(pooling) and pooling >= 0):
        raise DigiwormError(f"pooling must be a finite number >= 0; got {pooling}")
    if steps < 1 or transient_steps < 0 or not learning_rate > 0:
        raise DigiwormError(
            "need steps >= 1, transient_steps >= 0, learning_rate > 0; got "
            f"{steps}, {transient_steps}, {learning_rate}"
        )
    if targets is not None and set(targets) != set(refs):
        raise DigiwormError(f"targets must name exactly the references {refs}; got {set(targets)}")
    neurons = [REFERENCE_CELLS[r].neuron for r in refs]
    with jax.enable_x64(True):
        base = cells_from_expression(
            atlas, neurons, mapping, neuron_effects=False, dtype=jnp.float64
        )
        truth = {r: REFERENCE_CELLS[r].cell() for r in refs} if targets is None else targets
        dev = _fit_effects(
            base, refs, truth, pooling, steps, transient_steps, learning_rate, transient_currents
        )
    channels = [c for c in base.channels if c != "leak"]
    effects = {}
    for j, n in enumerate(neurons):
        own = {c: float(dev[i, j]) for i, c in enumerate(channels) if float(base.g_nS[c][j]) > 0}
        effects[n] = own | {"leak": float(dev[-2, j]), "e_leak_mV": _E_UNIT_MV * float(dev[-1, j])}
    return replace(mapping, neuron_effects=effects)


def _fit_effects(
    base, refs, truth, pooling, steps, transient_steps, learning_rate, transient_currents
) -> np.ndarray:
    """Run the optimisation of :func:`fit_neuron_effects` (call it with x64 enabled).

    Returns the deviations ``(channel..., leak, reversal) × reference``.
    """
    import optax

    channels = [c for c in base.channels if c != "leak"]
    g0 = jnp.stack([base.g_nS[c] for c in channels])
    mask = jnp.concatenate([g0 > 0, jnp.ones((2, len(refs)), bool)])
    iv = _iv_targets(refs, truth)

    def build(dev):
        g = g0 * jnp.exp(dev[: len(channels)])
        g_nS = {c: g[i] for i, c in enumerate(channels)}
        g_nS["leak"] = base.g_nS["leak"] * jnp.exp(dev[-2])
        return _with_conductances(base, g_nS, base.e_leak_mV + _E_UNIT_MV * dev[-1])

    def loss(dev, transient):
        return _misfit(build(dev), iv, transient) + pooling * jnp.sum(
            jnp.where(mask, dev, 0.0) ** 2
        ) / jnp.sum(mask)

    opt = optax.adam(learning_rate)

    @functools.partial(jax.jit, static_argnames=("use_transient",))
    def step(dev, state, transient, use_transient):
        grad = jax.grad(loss)(dev, transient if use_transient else None)
        grad = jnp.where(jnp.isfinite(grad) & mask, grad, 0.0)
        updates, state = opt.update(grad, state, dev)
        return optax.apply_updates(dev, updates), state

    dev = jnp.zeros(mask.shape, jnp.float64)
    state = opt.init(dev)
    for _ in range(steps):
        dev, state = step(dev, state, None, use_transient=False)
    if transient_steps:
        transient = _transient_targets(refs, truth, transient_currents)
        state = opt.init(dev)
        for _ in range(transient_steps):
            dev, state = step(dev, state, transient, use_transient=True)
    return np.asarray(dev)
