"""The :class:`Atlas`: every dataset on one neuron index, loaded lazily through the cache."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .._errors import DigiwormError, UnknownNameError
from . import _registry
from ._cache import Cache, CacheEvent
from ._expression import THRESHOLDS, load_gene_roles
from ._functional import DEFAULT_KERNEL_TIME_S, STRAINS, kernel_dataarray
from ._names import resolve_neuron
from ._neurons import neurons_frame

__all__ = ["Atlas", "load"]

CONNECTOME_KINDS = ("chemical", "gap")


def _choose(kind: str, value: str, valid: Sequence[str]) -> str:
    if value not in valid:
        raise UnknownNameError(kind, value, valid, hint=f"Valid: {', '.join(valid)}.")
    return value


def check_threshold(threshold: int) -> int:
    """Return ``threshold`` if it is a CeNGEN threshold (1-4), else raise a clear ValueError."""
    if isinstance(threshold, bool) or threshold not in THRESHOLDS:
        raise DigiwormError(
            f"CeNGEN threshold {threshold!r} is not valid; use 1 (liberal), 2 (medium), "
            "3 (conservative) or 4 (stringent)"
        )
    return int(threshold)


class Atlas:
    """The digital worm's data: 302 neurons and every dataset mapped onto them.

    Datasets are parsed from the installed ``wormneuroatlas`` and ``cect`` files on first use,
    cached on disk (see :mod:`digiworm.atlas._cache`) and kept in memory afterwards.
    Matrices are oriented ``[post, pre]`` (connectomes) or ``[responding, stimulated]``
    (functional atlas), so a response is ``W @ x``.

    Parameters
    ----------
    cache_dir : path, optional
        Where parsed datasets are cached; default ``$DIGIWORM_CACHE_DIR`` or the user cache.

    Examples
    --------
    >>> atlas = Atlas()
    >>> atlas.connectome("cook2019", "chemical").sel(pre="AVAL", post="VA8").item()
    7.0
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None):
        self.cache = Cache(cache_dir)
        self.events: list[CacheEvent] = []
        self._loaded: dict[str, xr.Dataset] = {}
        self._names: list[str] | None = None
        self._gene_index: dict[str, str] | None = None

    # -- loading --------------------------------------------------------------------------
    def dataset(self, name: str) -> xr.Dataset:
        """Return the raw cached Dataset ``name`` (one of :data:`DATASETS`), loading it once."""
        if name not in self._loaded:
            info = _registry.DATASETS.get(name)
            if info is None:
                raise UnknownNameError("dataset", name, _registry.DATASETS)
            names = None if name == "neurons" else self.names
            ds, event = self.cache.load(
                name,
                _registry.source_paths(info),
                _registry.builder(info, names),
                f"{info.builder_version}+{_registry.parser_digest()}",
            )
            ds.attrs.update(
                source=info.source, citation=info.citation, licence=info.licence,
                version=info.version,
            )  # fmt: skip
            for var in ds.variables.values():
                # callers get views of the one in-memory copy: make in-place edits fail loudly
                var.values.flags.writeable = False
            self.events.append(event)
            self._loaded[name] = ds
        return self._loaded[name]

    def load_all(self) -> list[CacheEvent]:
        """Load (building where needed) every dataset; return what the cache did for each."""
        for name in _registry.DATASETS:
            self.dataset(name)
        return list(self.events)

    # -- neurons --------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The 302 canonical neuron ids, in natural order (AS2 before AS10)."""
        if self._names is None:
            self._names = [str(n) for n in self.dataset("neurons").neuron.values]
        return self._names

    @property
    def neurons(self) -> pd.DataFrame:
        """Neuron table indexed by canonical id (columns: :data:`NEURON_COLUMNS`)."""
        return neurons_frame(self.dataset("neurons"))

    def neuron(self, name: str) -> str:
        """Return the canonical id for ``name`` (case-insensitive; AWCON → AWCR; VB01 → VB1).

        Raises
        ------
        UnknownNameError
            If it names no neuron; the message suggests the closest ids.
        """
        return resolve_neuron(name, self.names)

    def neuron_list(self, names: str | Iterable[str]) -> list[str]:
        """Resolve a comma-separated string or an iterable of neuron names to canonical ids."""
        if isinstance(names, str):
            names = [n for n in names.split(",") if n.strip()]
        return [self.neuron(n) for n in names]

    # -- connectomes ----------------------------------------------------------------------
    def connectome(self, name: str = "cook2019", kind: str = "chemical") -> xr.DataArray:
        """Return a connectome layer as ``W[post, pre]`` on the 302-neuron index.

        Parameters
        ----------
        name : str
            One of :data:`CONNECTOMES` (``cook2019``, ``white1986``, ``varshney2011``,
            ``wormneuroatlas``, ``witvliet2021_1`` … ``witvliet2021_8``).
        kind : {"chemical", "gap"}
            Chemical synapses or gap junctions (symmetric).

        Returns
        -------
        xarray.DataArray, dims (post, pre)
            Synapse counts; NaN rows/columns for neurons the reconstruction does not cover.
        """
        _choose("connectome", name, list(_registry.CONNECTOMES))
        _choose("synapse kind", kind, CONNECTOME_KINDS)
        ds = self.dataset(name)
        # a new DataArray with its own attrs: the cached dataset's variables stay untouched
        return ds[kind].assign_attrs(source=ds.attrs["source"], citation=ds.attrs["citation"])

    def neuromuscular(self, kind: str = "chemical") -> xr.DataArray:
        """Return the neuron → body-wall muscle connections ``W[muscle, neuron]`` (Cook 2019).

        Parameters
        ----------
        kind : {"chemical", "gap"}
            Chemical synapses or gap junctions from each neuron onto each of the 95 muscles.

        Returns
        -------
        xarray.DataArray, dims (muscle, neuron)
            Synapse counts; the ``muscle`` coordinates carry ``quadrant``, ``side``, ``row``
            and ``position`` (head 0 to tail 1). The dataset's ``muscle_gap`` variable holds
            the muscle-muscle gap junctions.
        """
        _choose("synapse kind", kind, CONNECTOME_KINDS)
        ds = self.dataset("neuromuscular")
        return ds[kind].assign_attrs(source=ds.attrs["source"], citation=ds.attrs["citation"])

    def extrasynaptic(self, name: str = "ripoll_sanchez_short", ligand: str | None = None):
        """Return an extrasynaptic network ``W[post, pre]``.

        Parameters
        ----------
        name : str
            One of :data:`EXTRASYNAPTIC`.
        ligand : str, optional
            For the Bentley networks, a single ligand (e.g. ``"serotonin"``, ``"flp-21"``).

        Returns
        -------
        xarray.DataArray, dims (post, pre)
            Number of ligand–receptor pairs linking ``pre`` to ``post``.
        """
        _choose("extrasynaptic network", name, list(_registry.EXTRASYNAPTIC))
        ds = self.dataset(name)
        if ligand is None:
            return ds["weight"]
        if "ligand" not in ds.coords:
            raise DigiwormError(f"{name} has no per-ligand layers; omit ligand=")
        valid = [str(x) for x in ds.ligand.values]
        return ds["by_ligand"].sel(ligand=_choose("ligand", ligand.lower(), valid))

    def receptor_polarity(self) -> pd.DataFrame:
        """Receptor genes per classical transmitter, polarity +1 excitatory / -1 inhibitory.

        From Fenyves et al. 2020's receptor gene table; used by digiworm's synapse-sign rule.
        """
        return self.dataset("receptor_polarity").to_dataframe().reset_index(drop=True)

    def peptide_gpcr(self) -> pd.DataFrame:
        """Peptide–GPCR pairs with EC50 (Beets et al. 2023), one row per pair."""
        return self.dataset("peptide_gpcr").to_dataframe().reset_index(drop=True)

    # -- expression -----------------------------------------------------------------------
    def _genes(self) -> dict[str, str]:
        if self._gene_index is None:
            ds = self.dataset("cengen")
            genes = [str(g) for g in ds.gene.values]
            index = {g.lower(): g for g in genes}
            index.update({str(w).lower(): g for w, g in zip(ds.wbgene.values, genes)})
            self._gene_index = index
        return self._gene_index

    def gene(self, name: str) -> str:
        """Return the CeNGEN spelling of a gene name or WBGene id (case-insensitive).

        Raises
        ------
        UnknownNameError
            If CeNGEN has no such gene; suggests the closest names.
        """
        index = self._genes()
        found = index.get(str(name).strip().lower())
        if found is None:
            genes = sorted({g for g in index.values()})
            raise UnknownNameError("gene", name, genes, hint="Genes are CeNGEN names, e.g. shk-1.")
        return found

    def expression(self, gene: str, threshold: int = 2) -> xr.DataArray:
        """Return a gene's CeNGEN expression for every neuron (TPM; 0 = not detected).

        Parameters
        ----------
        gene : str
            Gene name (``shk-1``) or WBGene id.
        threshold : {1, 2, 3, 4}
            CeNGEN threshold: 1 liberal … 4 stringent (Taylor et al. 2021). Default 2.

        Returns
        -------
        xarray.DataArray, dims (neuron,)
            TPM of the neuron's CeNGEN type; NaN for a neuron no type profiles.
        """
        threshold = check_threshold(threshold)
        gene = self.gene(gene)
        by_class = self.dataset("cengen")["tpm"].sel(threshold=threshold, gene=gene)
        classes = self.neurons["cengen_class"]
        lookup = {str(c): float(v) for c, v in zip(by_class.cengen_class.values, by_class.values)}
        values = np.array([lookup.get(c, np.nan) if c else np.nan for c in classes])
        return xr.DataArray(
            values,
            dims="neuron",
            coords={"neuron": self.names},
            name=gene,
            attrs={"units": "TPM", "threshold": threshold, "citation": _registry.CITE["cengen"]},
        )

    def expression_matrix(self, threshold: int = 2) -> xr.DataArray:
        """Return the CeNGEN TPM matrix ``[cengen_class, gene]`` at one threshold."""
        return self.dataset("cengen")["tpm"].sel(threshold=check_threshold(threshold))

    @property
    def gene_roles(self) -> pd.DataFrame:
        """Return digiworm's curated roles of neuronal genes (channels, receptors, innexins, …)."""
        return load_gene_roles()

    # -- functional atlas -----------------------------------------------------------------
    def functional(
        self, strain: str = "wt", kernel_time_s: np.ndarray | None = DEFAULT_KERNEL_TIME_S
    ) -> xr.Dataset:
        """Return the signal propagation atlas of one strain (Randi et al. 2023).

        Parameters
        ----------
        strain : {"wt", "unc31"}
            Wild type or the unc-31 (no dense-core-vesicle release) mutant.
        kernel_time_s : array of float, optional
            Times (s, >= 0) at which to evaluate the response kernels into ``kernel``;
            default 0–30 s every 0.5 s. ``None`` skips the evaluation.

        Returns
        -------
        xarray.Dataset, dims (responding, stimulated[, trial][, time])
            ``dff`` (fractional ΔF/F, trial mean), ``dff_trials``, ``n_trials``, ``q``,
            ``q_eq``, ``kernel`` (float64) and the raw kernel terms. NaN = never measured.
        """
        _choose("strain", strain, STRAINS)
        ds = self.dataset(f"funatlas_{strain}").copy()
        if kernel_time_s is not None:
            ds["kernel"] = kernel_dataarray(ds, np.asarray(kernel_time_s, dtype=np.float64))
        return ds

    # -- provenance -----------------------------------------------------------------------
    def catalogue(self) -> pd.DataFrame:
        """One row per dataset: what it measures, neurons covered, version, citation, licence."""
        rows = []
        for name, info in _registry.DATASETS.items():
            ds = self.dataset(name)
            rows.append(
                {
                    "name": name,
                    "kind": info.kind,
                    "measures": info.measures,
                    "neurons": _coverage(name, ds, self),
                    "version": info.version,
                    "citation": info.short_citation,
                    "full_citation": info.citation,
                    "licence": info.licence,
                    "unmapped": ds.attrs.get("unmapped", ""),
                }
            )
        return pd.DataFrame(rows).set_index("name")


def _coverage(name: str, ds: xr.Dataset, atlas: Atlas) -> str:
    if "n_mapped" in ds.attrs:
        return f"{int(ds.attrs['n_mapped'])}/302"
    if name == "neuromuscular":
        senders = int((np.nan_to_num(ds["chemical"].values).sum(axis=0) > 0).sum())
        return f"{senders} neurons onto {int(ds.attrs['n_muscles'])} muscles"
    if name == "cengen":
        covered = atlas.neurons["cengen_class"].notna().sum()
        return f"{covered}/302 ({ds.attrs['n_classes']} types)"
    return "-"


def load(cache_dir: str | os.PathLike[str] | None = None) -> Atlas:
    """Return an :class:`Atlas` (datasets load lazily on first access).

    Examples
    --------
    >>> import digiworm
    >>> atlas = digiworm.atlas.load()
    >>> len(atlas.names), atlas.neuron("awcon")
    (302, 'AWCR')
    """
    return Atlas(cache_dir)
