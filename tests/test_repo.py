"""House rules that a change could break: Quickstart, CI command, doctests, shipped tables."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pandas as pd
import pytest

import digiworm

ROOT = Path(__file__).resolve().parents[1]


def _quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_quickstart_has_exactly_two_commands():
    commands = _quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "digiworm" in commands[0] and "pip install ." in commands[0]
    assert "pytest" in commands[1] and ".[test]" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == _quickstart_commands()[1]


def _modules():
    for info in pkgutil.walk_packages(digiworm.__path__, "digiworm."):
        yield info.name


@pytest.mark.parametrize("module", sorted(_modules()))
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_gene_roles_table_is_valid_and_every_gene_is_in_cengen(atlas):
    roles = pd.read_csv(
        ROOT / "src" / "digiworm" / "atlas" / "data" / "gene_roles.csv",
        dtype=str,
        keep_default_na=False,
    )
    assert roles["gene"].is_unique
    assert set(roles["category"]) <= {
        "ion_channel", "receptor", "innexin", "transmitter_synthesis", "transmitter_transport",
        "vesicle_release", "neuropeptide", "neuropeptide_receptor",
    }  # fmt: skip
    effects = set(roles["model_effect"])
    assert {"dcv_release", "gap_junctions", "channel"} <= effects
    assert all(
        e in {"dcv_release", "sv_release", "gap_junctions", "channel", "receptor", "peptide",
              "peptide_receptor", "none"} or e.startswith("release:")
        for e in effects
    )  # fmt: skip
    assert (roles["citation"].str.len() > 5).all()
    genes = set(atlas.dataset("cengen").gene.values)
    assert set(roles["gene"]) <= genes, sorted(set(roles["gene"]) - genes)
    assert roles.set_index("gene").loc["unc-31", "model_effect"] == "dcv_release"
    assert roles.set_index("gene").loc["unc-7", "model_effect"] == "gap_junctions"


def test_no_bare_value_or_type_errors_reach_users():
    """User errors are DigiwormErrors (exit 2, one line); plain ValueError/TypeError are not.

    The named errors (InvalidParameterError, InsufficientDataError, DataPackageError,
    UnknownNameError) are ValueErrors too. Only the cache raises plain ValueError, internally:
    it catches its own to rebuild a corrupt entry.
    """
    internal = {"atlas/_cache.py"}
    found = []
    for path in sorted((ROOT / "src" / "digiworm").rglob("*.py")):
        rel = path.relative_to(ROOT / "src" / "digiworm").as_posix()
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\braise (ValueError|TypeError)\(", line) and rel not in internal:
                found.append(f"{rel}:{k}: {line.strip()}")
    assert not found, "\n".join(found)


def test_a_missing_program_skips_with_its_install_line_unless_required(monkeypatch):
    from conftest import require_program

    monkeypatch.delenv("DIGIWORM_REQUIRE_X", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install nothing-here"):
        require_program("no-such-program-xyz", "DIGIWORM_REQUIRE_X", "apt-get install nothing-here")
    monkeypatch.setenv("DIGIWORM_REQUIRE_X", "1")
    with pytest.raises(pytest.fail.Exception, match="DIGIWORM_REQUIRE_X=1 requires it"):
        require_program("no-such-program-xyz", "DIGIWORM_REQUIRE_X", "apt-get install nothing-here")
    assert require_program("python3", "DIGIWORM_REQUIRE_X", "") is not None


def test_ci_requires_the_browser_and_java_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "DIGIWORM_REQUIRE_BROWSER=1" in ci and "DIGIWORM_REQUIRE_JAVA=1" in ci
    assert "chromium" in ci and "default-jre-headless" in ci
    assert "-c constraints.txt" in _quickstart_commands()[1]
    pinned = [
        line for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]  # fmt: skip
    assert all("==" in line for line in pinned) and len(pinned) > 50


def test_models_do_not_import_simulate():
    """The layers run one way: simulate imports models, never the reverse (no cycle)."""
    import subprocess
    import sys

    code = (
        "import sys, digiworm.models; "
        "print(sorted(m for m in sys.modules if m.startswith('digiworm.simulate')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
