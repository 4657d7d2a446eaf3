"""``digiworm design study``: the synthetic study, the error formula and the input comparison.

:func:`run_design_report` computes, for one fitted linear network on the atlas's neurons:

1. the error formula against Monte-Carlo least squares (isotropic, eigenvalue decay, and the
   model's own spontaneous covariance with a shared drive);
2. spontaneous activity against random single-neuron stimulation as the input for
   identifying the couplings (:func:`~digiworm.design._spontaneous.spontaneous_vs_stimulation`);
3. the random-vs-designed synthetic study (:func:`~digiworm.design._study.design_study`);
4. the next stimulations for the real atlas (:func:`~digiworm.design.next_stimulations`);

and :func:`write_design_report` writes ``report.html`` (figures inline), ``study.json``,
``curves.csv`` and ``formula_check.csv`` into a folder, each atomically.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path, atomic_write_json, atomic_write_text
from ..report._atlas_report import _img, _png
from ._check import formula_check_figure, formula_vs_monte_carlo
from ._next import next_stimulations
from ._spontaneous import shared_drive_covariance, spontaneous_vs_stimulation
from ._study import StudyResult, StudySettings, Unknowns, design_study

__all__ = ["DesignReport", "run_design_report", "write_design_report"]


@dataclass
class DesignReport:
    """Everything ``digiworm design study`` computed."""

    formula: pd.DataFrame
    inputs: pd.DataFrame
    study: StudyResult
    next_trials: pd.DataFrame
    quick: bool


def _formula_cases(a: np.ndarray, quick: bool, seed: int):
    p = min(50 if quick else 100, a.shape[0])
    ratios = (1.2, 2.0, 5.0, 20.0) if quick else (1.2, 1.5, 2.0, 5.0, 20.0, 50.0)
    spont, _ = shared_drive_covariance(a, 0.7, seed=seed)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(a.shape[0], p, replace=False))
    sub = spont[np.ix_(idx, idx)]
    sub = sub * (p / np.trace(sub))
    kinds = (("isotropic", None), ("decay 0.95", 0.95), ("model spontaneous", sub))
    return [(p, int(round(r * p)), label, cov) for label, cov in kinds for r in ratios]


def run_design_report(
    model,
    sigma: np.ndarray,
    trials_done: np.ndarray,
    observed: np.ndarray,
    *,
    quick: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    criterion: str = "A",
    sets: dict[str, np.ndarray] | None = None,
    unknowns: Unknowns | None = None,
    seeds: int | None = None,
    max_trials: int | None = None,
) -> DesignReport:
    """Run the four parts (see the module docstring) on a fitted ``LinearModel``.

    ``criterion``, ``sets`` (candidates stimulated together besides single neurons) and
    ``unknowns`` (default the output gains) set the synthetic study's designs; ``seeds`` and
    ``max_trials`` override its size (default 5 seeds to 3,000 trials; quick 3 to 1,500).
    """

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    a = np.asarray(model.a_per_s, dtype=float)
    b = np.asarray(model.b_per_s, dtype=float)
    say("error formula against Monte-Carlo least squares")
    formula = formula_vs_monte_carlo(_formula_cases(a, quick, seed), reps=10 if quick else 20,
                                     seed=seed)  # fmt: skip
    say("spontaneous activity vs random stimulation as inputs")
    inputs = spontaneous_vs_stimulation(a, seed=seed)
    size = dict(seeds=3, max_trials=1500, checkpoints=7) if quick else dict(
        seeds=5, max_trials=3000, checkpoints=10)  # fmt: skip
    size.update({k: v for k, v in (("seeds", seeds), ("max_trials", max_trials)) if v})
    settings = StudySettings(**size, criterion=criterion)
    say(f"synthetic study: {settings.seeds} seeds, up to {settings.max_trials} trials")
    study = design_study(a, b, sigma, observed, settings, progress=say, sets=sets,
                         unknowns=unknowns, names=list(model.names))  # fmt: skip
    say("next stimulations for the real atlas")
    nxt = next_stimulations(model, sigma, trials_done, k=10, observed=observed)
    return DesignReport(formula, inputs, study, nxt, quick)


def _fig_study(study: StudyResult) -> bytes:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for k, (order, group) in enumerate(study.curves.groupby("order", sort=False)):
        for ax, metric in zip(axes[:2], ("gain_rmse", "prediction_r")):
            table = group.pivot(index="trials", columns="seed", values=metric)
            mean, sd = table.mean(axis=1), table.std(axis=1)
            ax.plot(table.index, mean, "o-", c=f"C{k}", label=order)
            ax.fill_between(table.index, mean - sd, mean + sd, color=f"C{k}", alpha=0.2)
    for ax, label in zip(axes[:2], (f"error of the {study.unknowns} (RMSE of logs)",
                                    "prediction r vs true responses")):  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("stimulation trials")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].axhline(study.settings.prior_sd, c="0.6", lw=0.8, ls=":")
    counts = np.sort(study.designed_counts)[::-1]
    axes[2].bar(np.arange(counts.size), counts, color="C1", width=1.0, label="designed")
    if study.adaptive_counts is not None:
        adaptive = np.sort(study.adaptive_counts)[::-1]
        axes[2].step(np.arange(adaptive.size), adaptive, where="mid", c="C2",
                     label="adaptive (mean over seeds)")  # fmt: skip
    axes[2].axhline(study.settings.max_trials / counts.size, c="C0", ls="--",
                    label="random (expected, every neuron)")  # fmt: skip
    axes[2].set_xlabel("candidates, by designed trials")
    axes[2].set_ylabel("trials at the full budget")
    axes[2].set_yscale("symlog")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Random, designed (greedy {study.settings.criterion}-optimal at the fitted "
                 "model) and adaptive (refitted and re-designed block by block) stimulation "
                 "orders: mean ± s.d. over "
                 f"{study.settings.seeds} ground-truth worms", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return _png(fig)


def _table(df: pd.DataFrame, columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = ""
    for row in df[columns].itertuples(index=False):
        cells = "".join(
            f"<td>{v:.4g}</td>" if isinstance(v, (float, np.floating)) else f"<td>{v}</td>"
            for v in row
        )
        body += f"<tr>{cells}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def write_design_report(report: DesignReport, out_dir: Path, wall_s: float) -> list[Path]:
    """Write report.html, study.json, curves.csv and formula_check.csv into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = report.study.summary()
    study_json = {
        "quick": report.quick,
        "wall_time_s": wall_s,
        "random_vs_designed": {**summary, "per_seed": report.study.needed.to_dict("records")},
        "spontaneous_vs_stimulation": report.inputs.to_dict("records"),
        "formula_vs_monte_carlo": report.formula.to_dict("records"),
        "next_stimulations": report.next_trials.to_dict("records"),
    }
    written = []
    atomic_write_json(out_dir / "study.json", study_json)
    written.append(out_dir / "study.json")
    for name, df in (("curves.csv", report.study.curves), ("formula_check.csv", report.formula)):
        with atomic_path(out_dir / name) as tmp:
            df.to_csv(tmp, index=False)
        written.append(out_dir / name)

    def ratio_text(block: dict, what: str) -> str:
        if block["ratio_mean"] is None:
            return f"{what} never reached the target"
        return (f"{block['ratio_mean']:.2f} ± {block['ratio_sd'] or 0:.2f} (range "
                f"{block['ratio_min']:.2f}–{block['ratio_max']:.2f}, "
                f"{block['seeds_reaching_target']}/{summary['seeds']} seeds)")  # fmt: skip

    designed_text = ratio_text(summary, "designed")
    adaptive_html = ""
    if "adaptive" in summary:
        adaptive_html = f"""<p>Adaptive order (after each block of max({
            report.study.settings.batch
        },
{report.study.settings.growth:g} × trials so far) trials the gains are refitted, every
candidate's Fisher information recomputed at the estimate, and the next block chosen greedily):
trials random needs over trials adaptive needs, <b>{ratio_text(summary["adaptive"], "adaptive")}
</b>; the gain of adaptivity alone (trials the fixed design needs over the adaptive's, for
random's final error): <b>{ratio_text(summary["adaptivity_gain"], "adaptive")}</b>.</p>
<p>Random over adaptive with the target set at random's error after fewer trials:</p>
{
            _table(
                report.study.ratio_by_budget("adaptive"),
                ["random_trials", "ratio_mean", "ratio_sd", "seeds"],
            )
        }"""
    columns = ["seed", "target_gain_rmse", "random", "designed", "ratio"]
    if "ratio_adaptive" in report.study.needed:
        columns += ["adaptive", "ratio_adaptive", "adaptivity_gain"]
    s = report.study.settings
    chose = ""
    for key, what in (("designed_chose", "designed"), ("adaptive_chose", "adaptive")):
        if key in summary:
            top = ", ".join(f"{html.escape(c['candidate'])} ({c['trials']:.0f})"
                            for c in summary[key]["top"])  # fmt: skip
            chose += (f"<li>{what}: {100 * summary[key]['trials_on_sets']:.1f} % of trials on "
                      f"sets of several neurons; most run: {top}</li>")  # fmt: skip
    study_fig = _img("study", _fig_study(report.study), "Gain error and prediction of the true "
                     "response matrix against trials; designed trials per neuron.")  # fmt: skip
    formula_cols = ("inputs p n n_over_p condition_number formula exact_gaussian monte_carlo "
                    "formula_over_mc exact_over_mc").split()  # fmt: skip
    formula_table = _table(report.formula, formula_cols)
    formula_fig = _img("formula", _png(formula_check_figure(report.formula)), "σ·√(p/n)·√(tr "
                       "Σ⁻¹/p) (large-n) and its exact Gaussian form σ·√(tr Σ⁻¹/(n−p−1)) over "
                       "least-squares Monte-Carlo.")  # fmt: skip
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digiworm design study</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{max-width:100%}}
figcaption{{font-size:13px;color:#555}}</style></head><body>
<h1>digiworm design study{" (quick)" if report.quick else ""}</h1>
<p>Wall time {wall_s:.0f} s.</p>
<h2>Random vs designed stimulation (synthetic worms)</h2>
<p>Ground truth: the fitted linear network with its {report.study.unknowns} perturbed
(log-normal, s.d. {s.truth_sd}; drawn again until it settles within
{s.max_time_constant_s:g} s); trials record the atlas's responders with the atlas's trial noise;
the unknowns are refitted (MAP, prior s.d. {s.prior_sd}) at each checkpoint. Random trials
stimulate one neuron; the designs choose among {len(report.study.candidates or [])} candidates.
Designed: greedy {s.criterion}-optimal order from the Fisher information of the starting model.
Trials random stimulation needs to reach its error at {s.max_trials} trials, over the trials
the designed order needs: <b>{designed_text}</b>.</p>
{_table(report.study.needed, columns)}
<p>The same ratio with the target set at random's error after fewer trials (mean ± s.d. over
seeds):</p>
{_table(report.study.ratio_by_budget(), ["random_trials", "ratio_mean", "ratio_sd", "seeds"])}
{adaptive_html}
<p>What the designs ran most (trials at the full budget; adaptive: mean over seeds):</p>
<ul>{chose}</ul>
{study_fig}
<h2>Spontaneous activity vs single-neuron stimulation as inputs</h2>
<p>Samples needed for the same coupling error, spontaneous over random stimulation, at equal
input power (tr Σ⁻¹·tr Σ/p²; 1 is stimulation's). Spontaneous activity: the fitted network's
stationary activity under private noise, alone or plus shared fluctuations along 3 random
directions scaled to put the stated fraction of the variance in the top 3 modes (whole-brain
imaging finds a few brain-wide modes dominating, Kato et al. 2015). Samples are taken as
independent; autocorrelated recordings make spontaneous data worth fewer still.</p>
{_table(report.inputs, ["setting", "top_modes_fraction", "condition_number", "trace_inv_per_p"])}
<h2>Error formula vs Monte-Carlo</h2>
{formula_table}
{formula_fig}
<h2>Next stimulations for the real atlas (A-optimal, output gains)</h2>
{_table(report.next_trials, ["rank", "neuron", "trials_done", "reduction"])}
</body></html>"""
    atomic_write_text(out_dir / "report.html", page)
    written.append(out_dir / "report.html")
    return written
