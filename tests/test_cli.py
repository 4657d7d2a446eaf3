"""The command line: cards and tables on good input, exit code 2 and one clear line on bad."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from digiworm.cli import app

runner = CliRunner()


def _run(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output  # click >= 8.2: output holds stdout and stderr


def test_atlas_table_lists_every_dataset(atlas):
    from digiworm.atlas import DATASETS

    code, text = _run("atlas")
    assert code == 0, text
    for name in DATASETS:
        assert name in text
    assert "Randi et al. 2023 Nature" in text


def test_neuron_card_shows_partners_and_responses(atlas):
    code, text = _run("neuron", "aval")
    assert code == 0, text
    assert "AVAL" in text and "AVA class" in text
    assert "PVCL (21)" in text  # Cook 2019: AVAL's strongest chemical output
    assert "stimulating it drives" in text


def test_gene_lists_expressing_neurons_and_role(atlas):
    code, text = _run("gene", "unc-25")
    assert code == 0, text
    assert "GABA" in text
    assert "DD1" in text and "RMED" in text


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("neuron", "AVLA"), ["unknown neuron 'AVLA'", "did you mean AVAL"]),
        (("gene", "shk-11"), ["unknown gene 'shk-11'", "shk-1"]),
        (("gene", "unc31"), ["did you mean unc-31"]),
        (("gene", "shk-1", "--threshold", "7"), ["threshold 7 is not valid", "4 (stringent)"]),
        (("neuron", "AVAL", "--threshold", "0"), ["threshold 0 is not valid"]),
    ],
)
def test_bad_input_exits_2_with_one_line(atlas, args, needles):
    code, text = _run(*args)
    assert code == 2
    assert "Traceback" not in text
    error_lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, text
    for needle in needles:
        assert needle in error_lines[0]
