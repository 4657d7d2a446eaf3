"""Genes and drugs at the neuromuscular junction: what they do to the muscles' drive.

The brain model takes knockouts and drugs through :mod:`digiworm.experiments`; this module
carries the same perturbations to the body-wall muscles, where most of the classic locomotion
pharmacology acts. Each rule changes one of the three knobs of
:class:`~digiworm.body.Muscles` (``excitatory_gain``, ``inhibitory_gain``, ``tonic``):

* **GABA lost** (``unc-25``, GAD; ``unc-47``, the vesicular GABA transporter; ``unc-49``, the
  muscle's GABA-A receptor): the D-types no longer inhibit: ``inhibitory_gain`` 0
  (McIntire et al. 1993 Nature 364:334 and 1997 Nature 389:870; Jin et al. 1999 J Neurosci
  19:539; Bamber et al. 1999 J Neurosci 19:5348).
* **ACh lost** (``unc-17``, the vesicular ACh transporter; ``cha-1``, choline
  acetyltransferase): ``excitatory_gain`` 0 (the null alleles are lethal; this is the limit the
  viable hypomorphs approach).
* **Receptors.** The junction has a levamisole-sensitive AChR (L-AChR: ``unc-29``, ``unc-38``,
  ``unc-63``, ``lev-1``) and a nicotine-sensitive one (``acr-16``) (Richmond & Jorgensen 1999
  Nat Neurosci 2:791; Touroutine et al. 2005 J Biol Chem 280:27013). Losing one removes its
  share of the evoked drive; the L-AChR's share, :data:`L_ACHR_SHARE` = 0.5, is *assumed*.
* **Levamisole** and the other L-AChR agonists (``junction`` = ``l_achr_agonist`` in the drug
  table: pyrantel, tribendimidine, with their own EC50s), drive every muscle tonically by
  :data:`LEVAMISOLE_TONIC` × H(dose) × (L-AChR present), in the drive's units (1: as much as
  all the muscle's excitatory synapses active): saturating levamisole contracts every muscle
  and the worm is paralysed, and L-AChR mutants are resistant (Lewis et al. 1980 Genetics
  95:905). The paralysis follows from that assumed scale: a consistency check, not a test.
* **Aldicarb** (``junction`` = ``ache_inhibitor``), an acetylcholinesterase inhibitor, lets
  ACh persist: the evoked drive grows by 1 + E H(dose) (E, H: the drug's row of
  ``drugs.csv``) and a tonic drive
  :data:`ALDICARB_TONIC` × H(dose) appears, both through the receptors present. The run is at
  steady state: the minutes-long onset of aldicarb paralysis is not modelled.
* **GABA-A agonists** (``gaba_a_agonist``: muscimol, piperazine) open the muscle's UNC-49
  Cl⁻ channels: a tonic drive of −:data:`GABA_AGONIST_TONIC` × H(dose) while UNC-49 is there,
  so saturating doses leave the muscles flaccid and unc-49 mutants resist (Bamber et al. 1999
  J Neurosci 19:5348: muscimol; Martin 1997 Vet J 154:11: piperazine's flaccid paralysis).
* **SLO-1 openers** (``slo1_opener``: emodepside, ethanol) activate the BK channel in motor
  neurons and muscle: the evoked excitatory drive × (1 − :data:`SLO1_SILENCING` × H(dose))
  while SLO-1 is there; slo-1 mutants resist (Guest et al. 2007 Int J Parasitol 37:1577:
  emodepside; Davies et al. 2003 Cell 115:655: ethanol).
* **GluCl agonists** (``glucl_agonist``: ivermectin, moxidectin) silence the neurons that
  express glutamate-gated Cl⁻ channels: both evoked drives × (1 − :data:`GLUCL_SILENCING` ×
  H(dose)), the motor circuit's output standing in for where the channels act; resistance
  needs glc-1, avr-14 and avr-15 all lost (Dent et al. 2000 PNAS 97:2674), so the rule holds
  while any of them is there.

Each of the last three rules' scale is *assumed* (saturating doses silence or shut the
muscle), as are the first two's: the paralysis that follows is a consistency check of the
rule's direction, not a prediction of its size.

The citations name each gene's role as recalled from the literature (not re-read here).
H(dose) is the Hill fraction of the drug's row in :func:`~digiworm.experiments.drug_table`
(each with its evidence level there). Drugs without a rule here act on the brain only.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp

from .._errors import DigiwormError
from ._muscles import Muscles

__all__ = [
    "ALDICARB_TONIC",
    "GABA_AGONIST_TONIC",
    "GLUCL_SILENCING",
    "L_ACHR_SHARE",
    "LEVAMISOLE_TONIC",
    "NMJ_GENES",
    "RULE_TARGETS",
    "SLO1_SILENCING",
    "neuromuscular_perturbation",
]

#: Share of the evoked junction current carried by the L-AChR (*assumed*).
L_ACHR_SHARE = 0.5
#: Tonic drive of saturating levamisole on a muscle with its L-AChR, in the drive's units
#: (*assumed*: as much as all its excitatory synapses active).
LEVAMISOLE_TONIC = 1.0
#: Tonic drive of saturating aldicarb through all receptors, in the drive's units (*assumed*).
ALDICARB_TONIC = 0.5

#: Tonic drive (negative: hyperpolarising) of a saturating GABA-A agonist on a muscle with its
#: UNC-49 receptor, in the drive's units (*assumed*: cancels all its excitatory synapses).
GABA_AGONIST_TONIC = 1.0
#: Share of the evoked excitatory drive a saturating SLO-1 opener silences (*assumed*).
SLO1_SILENCING = 1.0
#: Share of both evoked drives a saturating GluCl agonist silences (*assumed*).
GLUCL_SILENCING = 1.0
#: The genes each receptor-borne junction rule needs (the rule holds while any is present).
RULE_TARGETS = {
    "gaba_a_agonist": ("unc-49",),
    "slo1_opener": ("slo-1",),
    "glucl_agonist": ("glc-1", "avr-14", "avr-15"),
}

#: Genes with a rule at the junction: what their loss removes, and the source.
NMJ_GENES = {
    "unc-25": ("gaba", "Jin et al. 1999 J Neurosci 19:539 (GAD); McIntire et al. 1993"),
    "unc-47": ("gaba", "McIntire et al. 1997 Nature 389:870 (vesicular GABA transporter)"),
    "unc-49": ("gaba", "Bamber et al. 1999 J Neurosci 19:5348 (muscle GABA-A receptor)"),
    "unc-17": ("ach", "Alfonso et al. 1993 Science 261:617 (vesicular ACh transporter)"),
    "cha-1": ("ach", "Rand & Russell 1984 Genetics 106:227 (choline acetyltransferase)"),
    "unc-29": ("l_achr", "Richmond & Jorgensen 1999 Nat Neurosci 2:791 (L-AChR subunit)"),
    "unc-38": ("l_achr", "Richmond & Jorgensen 1999 Nat Neurosci 2:791 (L-AChR subunit)"),
    "unc-63": ("l_achr", "Culetto et al. 2004 J Biol Chem 279:42476 (L-AChR subunit)"),
    "lev-1": ("l_achr", "Fleming et al. 1997 J Neurosci 17:5843 (L-AChR subunit)"),
    "acr-16": ("n_achr", "Touroutine et al. 2005 J Biol Chem 280:27013 (N-AChR)"),
}


def _hill(name: str, dose_uM: float) -> tuple[str, float, float, str]:
    from ..experiments import drug_table
    from ..experiments._pharmacology import _drug_key
    from ..experiments._pharmacology import _hill as hill_fraction

    table = drug_table()
    key = _drug_key(name, table)
    if not (math.isfinite(dose_uM) and dose_uM >= 0):
        raise DigiwormError(f"drug dose must be a finite concentration >= 0 uM; got {dose_uM}")
    row = table.loc[key]
    h = hill_fraction(row, dose_uM)
    emax = float(row["emax"]) if math.isfinite(float(row["emax"] or "nan")) else 0.0
    junction = row["junction"] if isinstance(row["junction"], str) else ""
    return key, h, emax, junction


def neuromuscular_perturbation(
    muscles: Muscles, knockout=(), drugs=()
) -> tuple[Muscles, list[dict]]:
    """Return ``muscles`` under the knocked-out genes and drugs, and what each one did.

    ``knockout``: canonical gene names; ``drugs``: ``(name, dose_uM)`` pairs. Genes and drugs
    without a rule at the junction are listed as acting on the brain only. Each effect's
    record names its rule, source and evidence.
    """
    l_achr, n_achr, gaba, ach = 1.0, 1.0, 1.0, 1.0
    effects = []
    drug_targets = {g for genes in RULE_TARGETS.values() for g in genes}
    for gene in knockout:
        what = NMJ_GENES.get(gene)
        if what is None and gene in drug_targets:
            rules = ", ".join(r for r, genes in RULE_TARGETS.items() if gene in genes)
            note = f"no rule of its own; a target of the {rules} rule"
            effects.append({"perturbation": gene, "at the junction": note})
            continue
        if what is None:
            effects.append({"perturbation": gene, "at the junction": "no rule (brain only)"})
            continue
        kind, source = what
        l_achr = 0.0 if kind == "l_achr" else l_achr
        n_achr = 0.0 if kind == "n_achr" else n_achr
        gaba = 0.0 if kind == "gaba" else gaba
        ach = 0.0 if kind == "ach" else ach
        evidence = "measured (the gene's role)" + (
            f"; the L-AChR's share {L_ACHR_SHARE:g} assumed" if kind.endswith("achr") else ""
        )
        effects.append({"perturbation": gene, "at the junction": f"{kind} lost",
                        "source": source, "evidence": evidence})  # fmt: skip
    receptors = L_ACHR_SHARE * l_achr + (1 - L_ACHR_SHARE) * n_achr
    excitatory = ach * receptors
    tonic = 0.0
    for name, dose in drugs:
        key, h, emax, rule = _hill(name, dose)
        if rule == "l_achr_agonist":
            tonic += LEVAMISOLE_TONIC * h * l_achr
            effects.append({"perturbation": f"{key}:{dose:g}", "at the junction":
                            f"tonic drive {LEVAMISOLE_TONIC * h * l_achr:.3g} (L-AChR agonist)",
                            "source": "Lewis et al. 1980 Genetics 95:905 (levamisole)",
                            "evidence": "assumed (EC50 and tonic scale)"})  # fmt: skip
        elif rule == "ache_inhibitor":
            excitatory *= 1.0 + emax * h
            tonic += ALDICARB_TONIC * h * receptors * ach
            effects.append({"perturbation": f"{key}:{dose:g}", "at the junction":
                            f"evoked drive x{1 + emax * h:.3g}, tonic "
                            f"{ALDICARB_TONIC * h * receptors * ach:.3g} (ACh persists)",
                            "source": "Mahoney et al. 2006 Nat Protoc 1:1772",
                            "evidence": "assumed (EC50, gain, tonic; steady state)"})  # fmt: skip
        elif rule in RULE_TARGETS:
            present = float(any(g not in knockout for g in RULE_TARGETS[rule]))
            targets = "/".join(RULE_TARGETS[rule])
            if rule == "gaba_a_agonist":
                tonic -= GABA_AGONIST_TONIC * h * present
                did = f"tonic drive {-GABA_AGONIST_TONIC * h * present:.3g} (UNC-49 opened)"
                source = "Bamber et al. 1999 J Neurosci 19:5348; Martin 1997 Vet J 154:11"
            elif rule == "slo1_opener":
                excitatory *= 1.0 - SLO1_SILENCING * h * present
                did = f"evoked excitatory drive x{1 - SLO1_SILENCING * h * present:.3g} (SLO-1)"
                source = (
                    "Guest et al. 2007 Int J Parasitol 37:1577; Davies et al. 2003 Cell 115:655"
                )
            else:
                excitatory *= 1.0 - GLUCL_SILENCING * h * present
                gaba *= 1.0 - GLUCL_SILENCING * h * present
                did = f"both evoked drives x{1 - GLUCL_SILENCING * h * present:.3g} (GluCl)"
                source = "Dent et al. 2000 PNAS 97:2674"
            if not present:
                did += f"; no effect: {targets} knocked out"
            effects.append({"perturbation": f"{key}:{dose:g}", "at the junction": did,
                            "source": source, "evidence": "assumed (EC50 and scale)"})  # fmt: skip
        else:
            effects.append({"perturbation": f"{key}:{dose:g}",
                            "at the junction": "no rule (brain only)"})  # fmt: skip
    out = eqx.tree_at(
        lambda m: (m.excitatory_gain, m.inhibitory_gain, m.tonic),
        muscles,
        # arrays, not floats: a compiled run serves every perturbation without recompiling
        tuple(jnp.asarray(float(x)) for x in (excitatory, gaba, tonic)),
    )
    return out, effects
