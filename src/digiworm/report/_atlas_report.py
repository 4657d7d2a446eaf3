"""``digiworm atlas --report DIR``: one self-contained HTML page of the atlas, with figures."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from .._io import atomic_write_bytes, atomic_write_text  # noqa: E402

__all__ = ["anatomy_vs_response", "type_order", "write_atlas_report"]

TYPE_ORDER = ("sensory", "interneuron", "motor", "pharyngeal", "unknown")


def type_order(neurons: pd.DataFrame) -> list[str]:
    """Neuron ids sorted by type (sensory → interneuron → motor → pharyngeal), class, name."""
    rank = {t: k for k, t in enumerate(TYPE_ORDER)}
    keyed = neurons.assign(_t=neurons["type"].map(rank).fillna(len(rank)))
    return list(keyed.sort_values(["_t", "neuron_class"], kind="stable").index)


def _type_ticks(ax, neurons: pd.DataFrame, order: list[str], axis: str = "both") -> None:
    types = neurons.loc[order, "type"].to_numpy()
    edges = [0] + [k for k in range(1, len(types)) if types[k] != types[k - 1]] + [len(types)]
    centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    labels = [types[a] for a in edges[:-1]]
    for e in edges[1:-1]:
        if axis in ("both", "x"):
            ax.axvline(e - 0.5, color="k", lw=0.5)
        if axis in ("both", "y"):
            ax.axhline(e - 0.5, color="k", lw=0.5)
    if axis in ("both", "x"):
        ax.set_xticks(centers, labels, rotation=30, ha="right", fontsize=8)
    if axis in ("both", "y"):
        ax.set_yticks(centers, labels, fontsize=8)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _fig_connectome(atlas, order) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2))
    for ax, kind in zip(axes, ("chemical", "gap")):
        w = atlas.connectome("cook2019", kind).to_pandas().loc[order, order]
        im = ax.imshow(np.log1p(w.to_numpy()), cmap="magma_r", interpolation="nearest")
        _type_ticks(ax, atlas.neurons, order)
        ax.set_xlabel("presynaptic (sender)")
        ax.set_ylabel("postsynaptic (receiver)")
        ax.set_title(f"Cook 2019 {kind} {'synapses' if kind == 'chemical' else 'junctions'}")
        fig.colorbar(im, ax=ax, shrink=0.7, label="log(1 + count)")
    return _png(fig)


def _fig_functional(atlas, order) -> bytes:
    fun = atlas.functional("wt", kernel_time_s=None)
    dff = fun["dff"].to_pandas().loc[order, order].to_numpy()
    q = fun["q"].to_pandas().loc[order, order].to_numpy()
    off = ~np.eye(len(order), dtype=bool)
    vmax = np.nanpercentile(np.abs(dff[off]), 99)
    fig, ax = plt.subplots(figsize=(8.5, 7.5))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(dff), cmap=cmap, vmin=-vmax, vmax=vmax,
                   interpolation="nearest")  # fmt: skip
    r, c = np.nonzero((q < 0.05) & off)
    ax.scatter(c, r, s=1.5, c="k", marker="s", linewidths=0, label="q < 0.05")
    _type_ticks(ax, atlas.neurons, order)
    ax.set_xlabel("stimulated neuron")
    ax.set_ylabel("responding neuron")
    ax.set_title("Signal propagation atlas, wild type (Randi 2023): mean dF/F")
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
    fig.colorbar(im, ax=ax, shrink=0.75, label="dF/F (colour clipped at 99th pct of |dF/F|)")
    return _png(fig)


def _fig_channels(atlas, threshold: int = 2) -> bytes:
    roles = atlas.gene_roles
    channels = [g for g in roles.index[roles.category == "ion_channel"]]
    expr = atlas.expression_matrix(threshold).sel(gene=channels).to_pandas()
    neurons = atlas.neurons
    rank = {t: k for k, t in enumerate(TYPE_ORDER)}
    cls_type = neurons.groupby("cengen_class")["type"].first()
    classes = sorted(expr.index, key=lambda c: (rank.get(cls_type.get(c), 9), c))
    data = np.log10(1 + expr.loc[classes].T.to_numpy())
    fig, ax = plt.subplots(figsize=(16, 0.16 * len(channels) + 2))
    im = ax.imshow(data, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(channels)), channels, fontsize=6)
    ax.set_xticks(range(len(classes)), classes, fontsize=5, rotation=90)
    ax.set_title(f"Ion-channel genes by CeNGEN neuron type (threshold {threshold})")
    fig.colorbar(im, ax=ax, shrink=0.8, label="log10(1 + TPM)")
    return _png(fig)


def anatomy_vs_response(atlas) -> dict:
    """Measured wild-type dF/F against Cook 2019 synapse counts, over off-diagonal pairs.

    Returns
    -------
    dict
        ``x`` (chemical + gap count into the responder from the stimulated neuron), ``y``
        (dF/F), ``sig`` (q < 0.05), Pearson r raw and on values clipped to the 0.5–99.5
        percentiles of each variable, Spearman r, and n.
    """
    fun = atlas.functional("wt", kernel_time_s=None)
    dff = fun["dff"].to_numpy()
    q = fun["q"].to_numpy()
    w = (atlas.connectome("cook2019", "chemical") + atlas.connectome("cook2019", "gap")).to_numpy()
    keep = np.isfinite(dff) & np.isfinite(w) & ~np.eye(len(dff), dtype=bool)
    x, y, sig = w[keep], dff[keep], q[keep] < 0.05
    lo, hi = np.percentile(y, [0.5, 99.5])
    yc = np.clip(y, lo, hi)
    xlo, xhi = np.percentile(x, [0.5, 99.5])
    xc = np.clip(x, xlo, xhi)
    return {
        "x": x,
        "y": y,
        "sig": sig,
        "n": int(keep.sum()),
        "pearson_raw": float(stats.pearsonr(x, y)[0]),
        "pearson_clipped": float(stats.pearsonr(xc, yc)[0]),
        "spearman": float(stats.spearmanr(x, y)[0]),
        "clip_dff": (float(lo), float(hi)),
    }


def _fig_scatter(summary) -> bytes:
    x, y, sig = summary["x"], summary["y"], summary["sig"]
    lo, hi = summary["clip_dff"]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, size=x.size)  # display only
    ax.scatter(x[~sig] + jitter[~sig], np.clip(y[~sig], lo, hi), s=3, alpha=0.3, c="0.5",
               label="q >= 0.05")  # fmt: skip
    ax.scatter(x[sig] + jitter[sig], np.clip(y[sig], lo, hi), s=5, alpha=0.7, c="C3",
               label="q < 0.05")  # fmt: skip
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("Cook 2019 synapses stimulated → responder (chemical + gap)")
    ax.set_ylabel("measured dF/F (clipped to 0.5–99.5 pct)")
    ax.set_title(
        f"Anatomy vs response: Pearson r = {summary['pearson_raw']:.3f} raw, "
        f"{summary['pearson_clipped']:.3f} clipped;\nSpearman {summary['spearman']:.3f}; "
        f"n = {summary['n']} measured pairs",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return _png(fig)


def _img(name: str, data: bytes, caption: str) -> str:
    b64 = base64.b64encode(data).decode()
    return (
        f'<figure id="{name}"><img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{b64}"/><figcaption>{html.escape(caption)}</figcaption>'
        "</figure>"
    )


def write_atlas_report(atlas, out_dir: str | Path) -> Path:
    """Write ``index.html`` (self-contained) and the figures as PNGs into ``out_dir``.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    order = type_order(atlas.neurons)
    summary = anatomy_vs_response(atlas)
    figures = {
        "connectome": (_fig_connectome(atlas, order),
                       "Cook 2019 adjacency, rows receive from columns, sorted by neuron type."),
        "functional": (_fig_functional(atlas, order),
                       "Measured signal propagation atlas (wild type); grey = never measured; "
                       "black = response with q < 0.05."),
        "channels": (_fig_channels(atlas),
                     "CeNGEN expression of the curated ion-channel genes, by neuron type."),
        "anatomy_vs_response": (_fig_scatter(summary),
                                "Synapse count vs measured response over measured pairs."),
    }  # fmt: skip
    for name, (png, _) in figures.items():
        atomic_write_bytes(out / f"{name}.png", png)
    cat = atlas.catalogue().drop(columns=["unmapped", "citation"])
    missing = atlas.dataset("neurons").attrs.get("missing", "{}")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digiworm atlas report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:3px 6px;
vertical-align:top}}img{{max-width:100%}}figcaption{{font-size:13px;color:#555}}</style></head>
<body><h1>digiworm atlas</h1>
<p>Every dataset below is read offline from installed packages and mapped onto the 302
canonical hermaphrodite neurons. Matrices are oriented [post, pre] (connectomes) and
[responding, stimulated] (functional atlas).</p>
<h2>Datasets</h2>{cat.to_html(escape=True)}
<h2>Figures</h2>
{"".join(_img(name, png, cap) for name, (png, cap) in figures.items())}
<h2>Anatomy vs measured response</h2>
<p>Pearson r between Cook 2019 synapse counts (chemical + gap, stimulated → responder) and
measured wild-type dF/F over {summary["n"]} measured off-diagonal pairs:
<b>{summary["pearson_raw"]:.3f}</b> raw, <b>{summary["pearson_clipped"]:.3f}</b> with both
variables clipped to their 0.5–99.5 percentiles (dF/F clipped to
[{summary["clip_dff"][0]:.3f}, {summary["clip_dff"][1]:.3f}]); Spearman
<b>{summary["spearman"]:.3f}</b>.</p>
<h2>Neuron attributes no source provides</h2><pre>{html.escape(missing)}</pre>
</body></html>"""
    index = out / "index.html"
    atomic_write_text(index, page)
    return index
