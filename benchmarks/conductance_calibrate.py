"""Calibrate the conductance network's coupling on half the stimulations, score the other half.

The bottom-up network (:func:`conductance_network_from_atlas`) has three coupling strengths no
measurement gives directly: conductance per synapse, per gap junction, and the release threshold.
This fits the first two on a grid, by the clipped Pearson correlation of the in-silico atlas
with the measured wild-type atlas over the *training* stimulations only, and then scores the
chosen network and the uncalibrated defaults on the *held-out* stimulations (a two-fold class
split of the measured stimulated neurons, ``folds_for(..., "class", 2, seed)``: no neuron class
is on both sides). unc-31 (peptide layer off) is scored on the held-out stimulations the unc-31
atlas measured. Protocol as ``benchmarks/conductance_atlas.py`` (0.5 s step to 20 mV above the
isolated cell's rest, GCaMP6s, 5 s baseline, 30 s window, control subtracted, dt 0.5 ms).

    python benchmarks/conductance_calibrate.py [--train 32] [--syn 0.01,0.1,1] [--gap 0.01,0.1,1]
        [--map fitted|ratio] [--no-defaults]

``--map`` picks the expression map that builds the cells: ``fitted`` (the shipped map fitted
to the published models' I-V and clamps, the default of ``cells_from_expression``) or
``ratio`` (conductance over TPM, the cells of the first run). ``--no-defaults`` skips scoring
the uncalibrated defaults on the held-out side.

Writes ``benchmarks/results/conductance_calibrate.json`` and a heat map of the training scores
(``docs/figures/conductance_calibration.png``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=32, help="training stimulations per grid point")
    ap.add_argument("--syn", default="0.01,0.1,1", help="nS per synapse at full release")
    ap.add_argument("--gap", default="0.01,0.1,1", help="nS per gap junction")
    ap.add_argument("--held", type=int, default=0, help="score only N held-out (0: all; smoke)")
    ap.add_argument("--dt-ms", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--map", choices=("fitted", "ratio"), default="fitted")
    ap.add_argument("--no-defaults", action="store_true", help="skip the held-out defaults")
    ap.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "conductance_calibrate.json")
    )
    ap.add_argument(
        "--figure", default=str(ROOT / "docs" / "figures" / "conductance_calibration.png")
    )
    a = ap.parse_args()

    import digiworm
    from digiworm._io import atomic_write_json
    from digiworm.experiments import Knockout
    from digiworm.models import calibrate_expression_map, conductance_network_from_atlas
    from digiworm.simulate import depolarising_current, insilico_atlas
    from digiworm.validate import validate_prediction
    from digiworm.validate._scoreboard import folds_for

    atl = digiworm.atlas.load()
    mapping = None if a.map == "fitted" else calibrate_expression_map(atl)
    names = list(atl.names)
    measured = atl.functional("wt", kernel_time_s=None)
    classes = list(atl.neurons.loc[[str(s) for s in measured.stimulated.values], "neuron_class"])
    folds = folds_for(measured, classes, "class", 2, a.seed)
    stim_names = [str(s) for s in measured.stimulated.values]
    train_all = [stim_names[j] for j in folds[0]]
    held = [stim_names[j] for j in folds[1]][: a.held or None]
    rng = np.random.default_rng(a.seed)
    train = sorted(rng.choice(train_all, size=min(a.train, len(train_all)), replace=False))
    kw = dict(dt_s=a.dt_ms * 1e-3, subtract_control=True, batch_size=a.batch, progress=True)

    def run(net, stimulated, strain="wt"):
        amps = dict(zip(names, depolarising_current(net.cells, 20.0)))
        t0 = time.perf_counter()
        pred = insilico_atlas(net, stimulated, amplitude=amps, **kw)
        wall = time.perf_counter() - t0
        s = validate_prediction(atl, pred.reindex(stimulated=names), strain)
        row = {k: s["prediction"][k] for k in ("pearson_clipped", "spearman", "sign_accuracy")}
        row.update(
            auroc=s["prediction"]["auroc"],
            n_pairs=s["prediction"].get("n_pairs"),
            anatomy_pearson_clipped=s["anatomy"]["pearson_clipped"],
            ceiling=s["noise_ceiling"]["ceiling"],
            responding_abs_median=float(np.nanmedian(np.abs(pred["dff"].values))),
            wall_s=wall,
        )
        return row

    syn, gap = _floats(a.syn), _floats(a.gap)
    grid = np.full((len(syn), len(gap)), np.nan)
    rows = []
    for i, gs in enumerate(syn):
        for j, gg in enumerate(gap):
            net = conductance_network_from_atlas(atl, mapping=mapping, syn_nS=gs, gap_nS=gg)
            row = {"syn_nS": gs, "gap_nS": gg, **run(net, train)}
            grid[i, j] = row["pearson_clipped"]
            rows.append(row)
            print("train", json.dumps(row))
    i, j = np.unravel_index(np.nanargmax(grid), grid.shape)
    best = {"syn_nS": syn[i], "gap_nS": gap[j]}
    default = {"syn_nS": 0.01, "gap_nS": 0.01}
    result = {
        "split": f"class, 2 folds, seed {a.seed}",
        "map": a.map,
        "train_stimulated": list(train),
        "held_out_stimulated": held,
        "grid": rows,
        "best": best,
        "held_out": {},
    }
    unc31 = atl.functional("unc31", kernel_time_s=None)
    u_cols = np.isfinite(unc31["dff"].transpose("responding", "stimulated").to_numpy()).any(0)
    held_unc31 = [s for s, ok in zip(map(str, unc31.stimulated.values), u_cols) if ok and s in held]
    scored = [("calibrated", best)] + ([] if a.no_defaults else [("defaults", default)])
    for label, params in scored:
        net = conductance_network_from_atlas(atl, mapping=mapping, **params)
        result["held_out"][label] = {**params, "wt": run(net, held)}
        if held_unc31:
            ko = Knockout("unc-31", atl)(net)
            result["held_out"][label]["unc31"] = run(ko, held_unc31, "unc31")
        print(label, json.dumps(result["held_out"][label]))
    atomic_write_json(a.out, result)
    print(f"written {a.out}")
    _figure(syn, gap, grid, best, a.figure)


def _figure(syn, gap, grid, best, path):
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    from digiworm._io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    im = ax.imshow(grid, origin="lower", cmap="viridis")
    ax.set_xticks(range(len(gap)), [f"{g:g}" for g in gap])
    ax.set_yticks(range(len(syn)), [f"{s:g}" for s in syn])
    ax.set_xlabel("gap junction (nS each)")
    ax.set_ylabel("synapse (nS each, full release)")
    for (r, c), v in np.ndenumerate(grid):
        ax.text(c, r, f"{v:.3f}", ha="center", va="center", color="w", fontsize=8)
    ax.set_title(
        f"training clipped r (best: syn {best['syn_nS']:g}, gap {best['gap_nS']:g})", fontsize=9
    )
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)


if __name__ == "__main__":
    main()
