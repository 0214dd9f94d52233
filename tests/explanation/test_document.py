"""An explanation's three forms: text for a terminal, Markdown with TeX, and JSON with a schema."""

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

import deltaprop as dp
from deltaprop.cli import app

runner = CliRunner()
EXPECTED_MARKDOWN = Path(__file__).parents[1] / "data" / "explain-default.md"


def _schema():
    text = resources.files("deltaprop.explanation").joinpath("document.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _without_errors(text: str) -> str:
    """Relative errors depend on the machine's last bits; everything else must not."""
    return re.sub(r"relative error [0-9.e+-]+", "relative error <e>", text)


def test_the_default_markdown_matches_the_committed_file():
    """Regenerate after an intended change of format with
    ``deltaprop explain --format md > tests/data/explain-default.md``."""
    result = runner.invoke(app, ["explain", "--format", "md"])
    assert result.exit_code == 0, result.output
    assert _without_errors(result.output) == _without_errors(EXPECTED_MARKDOWN.read_text())


def test_markdown_writes_the_seeds_tex():
    markdown = EXPECTED_MARKDOWN.read_text()
    assert markdown.startswith("# Forward and back propagation, step by step\n")
    for heading in (
        "## Step 1: Gradient at output (layer 2 error)",
        "## Step 2: Gradients for layer 2 parameters (W⁽²⁾, b⁽²⁾)",
        "## Step 3: Propagate gradient to hidden layer 1",
        "## Step 4: Gradient through activation (ReLU)",
        "## Step 5: Gradients for layer 1 parameters (W⁽¹⁾, b⁽¹⁾)",
        "## The general rule",
    ):
        assert heading + "\n" in markdown
    assert r"$$ \dfrac{\partial L}{\partial W^{(2)}} = \delta^{(2)} (\mathbf{a}^{(1)})^T $$" in (
        markdown
    )
    assert markdown.count("$$") % 2 == 0 and r"\begin{bmatrix}" in markdown
    assert "Shapes: `(1, 4) = (1, 1)·(1, 4)`" in markdown


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--neuron"],
        ["--layers", "4,8,8,3", "--activation", "tanh", "--loss", "softmax-ce", "--batch", "5"],
        ["--layers", "2,3,2", "--loss", "poisson", "--batch", "2"],
    ],
    ids=["default", "neuron", "batch", "poisson"],
)
def test_json_follows_the_documented_schema_and_holds_every_value(args):
    result = runner.invoke(app, ["explain", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    jsonschema.validate(document, _schema(), cls=jsonschema.Draft202012Validator)
    assert document["schema"] == "deltaprop-explanation/1" and document["ok"] is True
    values = [p for s in document["steps"] for p in s["parts"] if p["type"] == "value"]
    checked = [p for p in values if p["check"] is not None]
    assert checked and all(p["check"]["ok"] for p in checked)
    for part in values:  # full data, of the stated shape
        assert np.shape(part["data"]) == tuple(part["shape"]), part["key"]


def test_json_values_equal_the_python_explanation(rng):
    model = dp.mlp([3, 4, 2], rng=rng, dtype=np.float64)
    X, y = rng.standard_normal((2, 3)), np.array([1, 0])
    explanation = dp.explain(model, dp.SoftmaxCrossEntropy(), X, y)
    document = json.loads(json.dumps(explanation.to_dict(), allow_nan=False))
    jsonschema.validate(document, _schema(), cls=jsonschema.Draft202012Validator)
    by_key = {p["key"]: p for s in document["steps"] for p in s["parts"] if p["type"] == "value"}
    np.testing.assert_array_equal(by_key["dW1"]["data"], explanation.value("dW1"))
    assert by_key["dW1"]["check"]["relative_error"] == explanation.checks["dW1"]
    assert by_key["dW1"]["check"]["entries"] == 12


def test_large_layers_are_summarized_in_text_and_markdown_but_not_in_json(rng):
    model = dp.mlp([100, 20, 3], rng=rng)
    X, y = rng.standard_normal((1, 100)), np.array([2])
    explanation = dp.explain(model, dp.SoftmaxCrossEntropy(), X, y, sample=16)
    text = explanation.to_text()
    assert "W⁽¹⁾: shape (20, 100), norm" in text and "largest [" in text
    assert max(len(line) for line in text.splitlines()) < 200
    assert "16 entries sampled" in text
    assert "$W^{(1)}$: shape (20, 100)" in explanation.to_markdown()
    W1 = next(p for s in explanation.to_dict()["steps"] for p in s["parts"] if p.get("key") == "W1")
    assert np.shape(W1["data"]) == (20, 100)


def test_text_is_plain_when_piped():
    result = runner.invoke(app, ["explain"])
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output  # no colour codes off a terminal
    assert result.output.startswith("Forward and back propagation, step by step\n")
    assert "All 11 gradients agree with central differences" in result.output
