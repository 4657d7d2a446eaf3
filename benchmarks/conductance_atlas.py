"""The in-silico signal-propagation atlas at the conductance level, scored like the others.

Builds the 302-neuron :class:`ConductanceNetwork` (expression-built cells; Cook 2019 synapses
and gap junctions; short-range peptides; uncalibrated coupling defaults), stimulates every
neuron in turn with a 0.5 s current step sized to hold that neuron, isolated, 20 mV above its
rest (:func:`depolarising_current`), records ΔF/F through GCaMP6s and scores the matrix with
``validate_prediction`` (wild type) and, for the unc-31 knockout (peptide layer off), against
the measured unc-31 atlas. Nothing is fitted, so every pair is out of sample. Beside it: the
graded network with its defaults (also unfitted), same protocol in mV (its own 40 mV default).
An unstimulated control runs in every batch and its change is subtracted (some expression-built
cells are not quiescent at rest).

    python benchmarks/conductance_atlas.py [--neurons 32] [--dt-ms 0.5] [--out ...]

Wall time is reported per condition per simulated second and for the whole atlas. ``--smoke``
runs every row on the first 8 neurons in one batch, 1 s settle, baseline and window: a check
that it works, not a measurement (the 302-neuron build and the compilation dominate it).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, help="stimulate only the first N (0: all; smoke 8)")
    ap.add_argument("--dt-ms", type=float, default=0.5)
    ap.add_argument("--delta-mV", type=float, default=20.0)
    ap.add_argument("--batch", type=int, help="conditions per batch (32; smoke 8)")
    ap.add_argument(
        "--rows",
        default="conductance,conductance_unc31,graded_defaults",
        help="which atlases to run (comma-separated)",
    )
    ap.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "conductance_atlas.json")
    )
    ap.add_argument("--smoke", action="store_true", help="every row at tiny sizes (a check)")
    a = ap.parse_args()
    # smoke: 8 neurons, not fewer: over the first 2-4 the unc-31 split-half reliability is
    # negative, its noise ceiling 0, and validate_prediction divides by that ceiling
    a.neurons = (8 if a.smoke else 0) if a.neurons is None else a.neurons
    a.batch = a.batch or (8 if a.smoke else 32)
    # settle, baseline and window in s (insilico_atlas's and simulate's defaults; smoke: 1 each)
    timing = {"settle_s": 1.0, "baseline_s": 1.0, "window_s": 1.0} if a.smoke else {}

    import digiworm
    from digiworm._io import atomic_write_json
    from digiworm.experiments import Knockout
    from digiworm.models import conductance_network_from_atlas, graded_from_atlas
    from digiworm.simulate import depolarising_current, insilico_atlas
    from digiworm.validate import validate_prediction

    atl = digiworm.atlas.load()
    t0 = time.perf_counter()
    net = conductance_network_from_atlas(atl)
    build_s = time.perf_counter() - t0
    names = list(net.names)
    stimulated = names if a.neurons <= 0 else names[: a.neurons]
    amps = dict(zip(names, depolarising_current(net.cells, a.delta_mV)))
    result = {
        "smoke": a.smoke,
        "build_s": build_s,
        "dt_ms": a.dt_ms,
        "delta_mV": a.delta_mV,
        "settle_s": timing.get("settle_s", 5.0),
        "n_stimulated": len(stimulated),
        "amplitude_pA_percentiles": np.percentile(list(amps.values()), [5, 50, 95]).tolist(),
    }
    rows = {}
    for label, model, kw in (
        ("conductance", net, dict(amplitude=amps, dt_s=a.dt_ms * 1e-3, subtract_control=True)),
        (
            "conductance_unc31",
            Knockout("unc-31", atl)(net),
            dict(amplitude=amps, dt_s=a.dt_ms * 1e-3, subtract_control=True),
        ),
        ("graded_defaults", graded_from_atlas(atl), dict(dt_s=0.02)),
    ):
        if label not in a.rows.split(","):
            continue
        t0 = time.perf_counter()
        pred = insilico_atlas(model, stimulated, batch_size=a.batch, progress=True, **timing, **kw)
        wall = time.perf_counter() - t0
        strain = "unc31" if label.endswith("unc31") else "wt"
        scores = validate_prediction(atl, pred.reindex(stimulated=names), strain)
        sim_s = len(stimulated) * (pred.attrs["baseline_s"] + pred.attrs["window_s"])
        rows[label] = {
            "strain": strain,
            "baseline_s": pred.attrs["baseline_s"],
            "window_s": pred.attrs["window_s"],
            "wall_s": wall,
            "per_condition_per_sim_s": wall / sim_s,
            "pearson_clipped": scores["prediction"]["pearson_clipped"],
            "spearman": scores["prediction"]["spearman"],
            "sign_accuracy": scores["prediction"]["sign_accuracy"],
            "auroc": scores["prediction"]["auroc"],
            "anatomy_pearson_clipped": scores["anatomy"]["pearson_clipped"],
            "ceiling": scores["noise_ceiling"]["ceiling"],
            "n_pairs": scores["prediction"].get("n_pairs"),
            "responding_abs_median": float(np.nanmedian(np.abs(pred["dff"].values))),
        }
        print(label, json.dumps(rows[label]))
    result["rows"] = rows
    result["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    atomic_write_json(a.out, result)
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
