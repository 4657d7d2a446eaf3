"""The catalogue of datasets: what each measures, where it is read from, and how to cite it."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from . import _connectomes, _expression, _extrasynaptic, _functional, _neuromuscular, _polarity
from ._neurons import build_neurons
from ._sources import package_file, package_version

__all__ = ["DATASETS", "CONNECTOMES", "EXTRASYNAPTIC", "DatasetInfo"]

WNA = "wormneuroatlas"
CECT = "cect"
GPL3 = "GPL-3.0-or-later"
MIT = "MIT"


@dataclass(frozen=True)
class DatasetInfo:
    """Provenance of one dataset of the atlas.

    Attributes
    ----------
    name : str
        digiworm's name for it (used by the API and the CLI).
    kind : str
        neurons | connectome | neuromuscular | extrasynaptic | expression | functional | table.
    measures : str
        What it measures, in a phrase.
    citation : str
        The paper to cite for the data.
    licence : str
        Licence under which digiworm reads the files.
    package : str
        Installed package whose files are read.
    files : tuple of str
        Files read, relative to the package folder.
    builder_version : str
        Bumped when digiworm's parser of these files changes.
    """

    name: str
    kind: str
    measures: str
    citation: str
    licence: str
    package: str
    files: tuple[str, ...]
    builder_version: str = "1"

    @property
    def short_citation(self) -> str:
        """Author-year-journal form of :attr:`citation`, e.g. ``Cook et al. 2019 Nature``."""
        return "; ".join(_short(c) for c in self.citation.split("; "))

    @property
    def version(self) -> str:
        """Installed version of the package the data come from."""
        return f"{self.package} {package_version(self.package)}"

    @property
    def source(self) -> str:
        """Package and files read, for provenance tables."""
        return f"{self.version}: " + ", ".join(self.files)

    def paths(self) -> list[Path]:
        """Absolute paths of the source files (raises if the package lacks one)."""
        return [package_file(self.package, f) for f in self.files]


def _short(citation: str) -> str:
    author = citation.split(" ", 1)[0]
    year = re.search(r"\((\d{4})\)", citation)
    journal = re.sub(r"\s+[\w-]+:[\w-]+$", "", citation.rsplit(". ", 1)[-1])
    return f"{author} et al. {year.group(1) if year else ''} {journal}".strip()


CITE = {
    "cook": "Cook SJ et al. (2019) Whole-animal connectomes of both Caenorhabditis elegans "
    "sexes. Nature 571:63-71",
    "white": "White JG, Southgate E, Thomson JN, Brenner S (1986) The structure of the nervous "
    "system of the nematode Caenorhabditis elegans. Phil Trans R Soc Lond B 314:1-340",
    "varshney": "Varshney LR, Chen BL, Paniagua E, Hall DH, Chklovskii DB (2011) Structural "
    "properties of the Caenorhabditis elegans neuronal network. PLoS Comput Biol 7:e1001066",
    "witvliet": "Witvliet D et al. (2021) Connectomes across development reveal principles of "
    "brain maturation. Nature 596:257-261",
    "ripoll": "Ripoll-Sanchez L et al. (2023) The neuropeptidergic connectome of C. elegans. "
    "Neuron 111:3570-3589",
    "bentley": "Bentley B et al. (2016) The multilayer connectome of Caenorhabditis elegans. "
    "PLoS Comput Biol 12:e1005283",
    "beets": "Beets I et al. (2023) System-wide mapping of peptide-GPCR interactions in C. "
    "elegans. Cell Rep 42:113058",
    "cengen": "Taylor SR et al. (2021) Molecular topography of an entire nervous system. Cell "
    "184:4329-4347",
    "randi": "Randi F, Sharma AK, Dvali S, Leifer AM (2023) Neural signal propagation atlas of "
    "Caenorhabditis elegans. Nature 623:406-414",
    "wang": "Wang C et al. (2024) A neurotransmitter atlas of C. elegans males and "
    "hermaphrodites. eLife 13:RP95402",
    "fenyves": "Fenyves BG, Szilagyi GS, Vassy Z, Soti C, Csermely P (2020) Synaptic polarity "
    "and sign-balance prediction using gene expression data in the Caenorhabditis elegans "
    "chemical synapse neuronal connectome network. PLoS Comput Biol 16:e1007974",
}

#: Witvliet et al. 2021 datasets 1-8: stage and hours after birth.
WITVLIET_STAGES = {
    1: "L1, 0 h", 2: "L1, 5 h", 3: "L1, 8 h", 4: "L1, 16 h",
    5: "L2, 23 h", 6: "L3, 27 h", 7: "adult, 45 h", 8: "adult, 50 h",
}  # fmt: skip

_CS_GJ = {"chemical": "Generic_CS", "gap": "Generic_GJ"}


def _connectome_infos() -> dict[str, DatasetInfo]:
    out = {
        "cook2019": DatasetInfo(
            "cook2019", "connectome", "chemical synapses and gap junctions, adult hermaphrodite "
            "(EM, whole animal)", CITE["cook"], MIT, CECT, ("cache/Cook2019HermReader.json",)),
        "white1986": DatasetInfo(
            "white1986", "connectome", "chemical synapses and gap junctions, adult hermaphrodite "
            "(EM, whole animal)", CITE["white"], MIT, CECT, ("cache/White_whole.json",)),
        "varshney2011": DatasetInfo(
            "varshney2011", "connectome", "chemical synapses and gap junctions, somatic nervous "
            "system (no pharynx)", CITE["varshney"], MIT, CECT, ("cache/VarshneyDataReader.json",)),
        "wormneuroatlas": DatasetInfo(
            "wormneuroatlas", "connectome", "wormneuroatlas default adult connectome (White 1986 "
            "+ Witvliet 2021 adults)", CITE["white"] + "; " + CITE["witvliet"], GPL3, WNA,
            ("data/aconnectome_default.h5", "data/funatlas.h5")),
    }  # fmt: skip
    for k, stage in WITVLIET_STAGES.items():
        out[f"witvliet2021_{k}"] = DatasetInfo(
            f"witvliet2021_{k}", "connectome",
            f"chemical synapses and gap junctions, nerve ring, dataset {k} ({stage})",
            CITE["witvliet"], MIT, CECT, (f"cache/WitvlietDataReader{k}.json",),
        )  # fmt: skip
    return out


CONNECTOMES: dict[str, DatasetInfo] = _connectome_infos()

EXTRASYNAPTIC: dict[str, DatasetInfo] = {
    **{
        f"ripoll_sanchez_{r}": DatasetInfo(
            f"ripoll_sanchez_{r}", "extrasynaptic",
            f"neuropeptide connectome, {r}-range diffusion model (peptide-GPCR pairs)",
            CITE["ripoll"], MIT, CECT, (f"cache/RipollSanchez{r.capitalize()}RangeReader.json",),
        )
        for r in ("short", "mid", "long")
    },
    "bentley_monoamine": DatasetInfo(
        "bentley_monoamine", "extrasynaptic", "monoamine network (ligand, receptor) edges",
        CITE["bentley"], GPL3, WNA, ("data/esconnectome_monoamines_Bentley_2016.csv",)),
    "bentley_peptide": DatasetInfo(
        "bentley_peptide", "extrasynaptic", "neuropeptide network (ligand, receptor) edges",
        CITE["bentley"], GPL3, WNA, ("data/esconnectome_neuropeptides_Bentley_2016.csv",)),
}  # fmt: skip

OTHER: dict[str, DatasetInfo] = {
    "neurons": DatasetInfo(
        "neurons", "neurons", "302 neurons: class, partners, type, ganglion, soma position, "
        "transmitter, CeNGEN type", CITE["cook"] + "; " + CITE["wang"] + "; " + CITE["fenyves"],
        MIT + "; " + GPL3, CECT,
        ("cache/Wang2024HermReader.json", "Cells.py"),
    ),
    "neuromuscular": DatasetInfo(
        "neuromuscular", "neuromuscular", "neuron to body-wall muscle chemical synapses and gap "
        "junctions, muscle-muscle gap junctions, 95 muscles, adult hermaphrodite (EM)",
        CITE["cook"], MIT, CECT, ("cache/Cook2019HermReader.json",)),
    "peptide_gpcr": DatasetInfo(
        "peptide_gpcr", "table", "peptide-GPCR activation (EC50) pairs", CITE["beets"], GPL3,
        WNA, ("data/deorphanization_media_6.csv",)),
    "receptor_polarity": DatasetInfo(
        "receptor_polarity", "table", "receptor genes per transmitter, excitatory or inhibitory",
        CITE["fenyves"], GPL3, WNA, ("data/journal.pcbi.1007974.s003.xlsx",)),
    "cengen": DatasetInfo(
        "cengen", "expression", "single-cell RNA-seq TPM, 128 neuron types x 13,669 genes, "
        "thresholds 1-4", CITE["cengen"], GPL3, WNA, ("data/cengen.h5",)),
    "funatlas_wt": DatasetInfo(
        "funatlas_wt", "functional", "whole-brain dF/F responses to single-neuron optogenetic "
        "stimulation, wild type", CITE["randi"], GPL3, WNA, ("data/funatlas.h5",)),
    "funatlas_unc31": DatasetInfo(
        "funatlas_unc31", "functional", "whole-brain dF/F responses to single-neuron "
        "optogenetic stimulation, unc-31 mutant", CITE["randi"], GPL3, WNA,
        ("data/funatlas.h5",)),
}  # fmt: skip

#: Every dataset, in the order ``digiworm atlas`` lists them.
DATASETS: dict[str, DatasetInfo] = {
    "neurons": OTHER["neurons"],
    **CONNECTOMES,
    "neuromuscular": OTHER["neuromuscular"],
    **EXTRASYNAPTIC,
    "peptide_gpcr": OTHER["peptide_gpcr"],
    "receptor_polarity": OTHER["receptor_polarity"],
    "cengen": OTHER["cengen"],
    "funatlas_wt": OTHER["funatlas_wt"],
    "funatlas_unc31": OTHER["funatlas_unc31"],
}

_NEURON_EXTRA_FILES = (
    ("wormneuroatlas", "data/anatlas_neuron_positions.txt"),
    ("wormneuroatlas", "data/aconnectome_ids_ganglia.json"),
    ("wormneuroatlas", "data/journal.pcbi.1007974.s003.xlsx"),
    ("wormneuroatlas", "data/cengen.h5"),
)


_PARSER_MODULES = (
    "_names.py", "_neurons.py", "_connectomes.py", "_extrasynaptic.py", "_expression.py",
    "_functional.py", "_registry.py", "_polarity.py", "_neuromuscular.py",
)  # fmt: skip


@functools.cache
def parser_digest() -> str:
    """Digest of digiworm's parser source files: editing a parser invalidates its cache."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for module in _PARSER_MODULES:
        digest.update((here / module).read_bytes())
    return digest.hexdigest()[:12]


def source_paths(info: DatasetInfo) -> list[Path]:
    """Every file a dataset's builder reads (its cache key covers all of them)."""
    paths = info.paths()
    if info.name == "neurons":
        paths += [package_file(pkg, f) for pkg, f in _NEURON_EXTRA_FILES]
    return paths


def builder(info: DatasetInfo, names: list[str] | None) -> Callable[[], xr.Dataset]:
    """Return the zero-argument function that parses ``info``'s files into a Dataset."""
    paths = info.paths()
    if info.name == "neurons":
        return build_neurons
    if info.kind == "connectome":
        if info.package == WNA:
            return lambda: _connectomes.from_wormneuroatlas(paths[0], paths[1], names)
        return lambda: _connectomes.from_cect(paths[0], names, _CS_GJ)
    if info.kind == "neuromuscular":
        return lambda: _neuromuscular.build_neuromuscular(paths[0], names)
    if info.name.startswith("ripoll_sanchez"):
        return lambda: _extrasynaptic.ripoll_sanchez(paths[0], names)
    if info.name.startswith("bentley"):
        return lambda: _extrasynaptic.bentley_network(paths[0], names)
    if info.name == "peptide_gpcr":
        return lambda: _extrasynaptic.peptide_gpcr_table(paths[0])
    if info.name == "receptor_polarity":
        return lambda: _polarity.build_receptor_polarity(paths[0])
    if info.name == "cengen":
        return lambda: _expression.build_expression(paths[0])
    if info.kind == "functional":
        strain = info.name.removeprefix("funatlas_")
        return lambda: _functional.build_functional(paths[0], names, strain)
    raise KeyError(info.name)  # pragma: no cover - every registered dataset has a builder
