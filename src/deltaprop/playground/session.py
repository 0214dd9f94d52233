"""One browser tab's training state in ``deltaprop playground``: the engine, driven epoch by epoch.

A :class:`Session` holds a data set split into training and test rows, the preprocessing fitted
on the training rows, a network, its loss and optimizer. :meth:`Session.advance` trains whole
epochs with :func:`deltaprop.fit` (so the Python code :meth:`Session.code` exports reproduces the
same weights); :meth:`Session.snapshot` is what the page draws; :meth:`Session.explain` is
``dp.explain``'s record of one sample's forward and backward pass, every gradient checked by
central differences. Nothing here is recomputed in the page.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from typing import Any

import numpy as np

from ..data import catalog as datasets
from ..data.tables import Table
from ..explanation.explain import explain
from ..explanation.gradcheck import float64_copy
from ..files.model_files import save
from ..training import pipeline
from ..training.evaluation import evaluate, predict
from ..training.loop import fit
from ..training.scoring import class_probabilities
from .settings import DATA_SETS, Settings, SettingsError, is_int, load_data

MAX_DATA_BYTES = 64_000_000
"""The most memory one session's features and targets may take."""

MAX_PARAMETERS = 5_000_000
"""A network above this many parameters is refused: it would not train at an interactive pace."""

GRID = 32
"""Heat maps of 2-D data are sampled on a GRID × GRID lattice over the input plane (the page
draws them smooth, interpolating between the lattice's points)."""

TOLERANCE = 1e-4
"""The relative error that passes the page's gradient checks: float64 central differences of a
gradient of 1e-5 or less resolve it only to about 1e-6 (PyTorch's gradcheck: 1e-3)."""

DRAWN_UNITS = 12
"""Units per layer the page draws; a wider layer is drawn as these and a summary node."""


class Session:
    """A data set, a network and its training, as one tab of the page sees them."""

    def __init__(self, settings: Settings, uploads: dict[str, str]) -> None:
        self.settings = settings
        self.lock = threading.Lock()  # training and explaining take turns
        try:
            data = load_data(settings, uploads)
            prepared = pipeline.prepare(
                data,
                test_size=0.25,
                seed=settings.seed,
                dtype=np.float32,
                standardize=settings.standardize,
            )
        except (ValueError, KeyError) as error:
            raise SettingsError(f"data: {error}".replace("--target", "the target field")) from None
        self.data, self.prep = data, prepared.prep
        self.train, self.test = prepared.train, prepared.test
        self.X_train, self.y_train = prepared.X_train, prepared.y_train
        self.X_test, self.y_test = prepared.X_test, prepared.y_test
        try:
            self.loss = pipeline.choose_loss(settings.loss, self.prep)
        except ValueError as error:
            raise SettingsError(f"loss: {error}") from None
        data_bytes = sum(a.nbytes for a in (self.X_train, self.X_test, self.y_train, self.y_test))
        if data_bytes > MAX_DATA_BYTES:
            raise SettingsError(
                f"data: {data.name} makes {data_bytes / 1e6:,.0f} MB of features (its text "
                f"columns one-hot encoded); at most {MAX_DATA_BYTES / 1e6:,.0f} MB per session"
            )
        widths = pipeline.widths(self.prep, self.loss, settings.hidden)
        n_parameters = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))
        if n_parameters > MAX_PARAMETERS:
            raise SettingsError(
                f"hidden: {widths} makes {n_parameters:,} parameters; at most "
                f"{MAX_PARAMETERS:,} train at an interactive pace"
            )
        self.rng = np.random.default_rng(settings.seed)
        try:
            self.model = pipeline.build_mlp(
                self.prep,
                self.loss,
                settings.hidden,
                rng=self.rng,
                activation=settings.activation,
                init=settings.init,
                dropout=settings.dropout,
                l2=settings.l2,
            )
            self.optimizer = pipeline.build_optimizer(settings.optimizer, self.model, settings.lr)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        self.widths = widths
        self.nbytes = data_bytes + 4 * self.model.flat_values.nbytes  # weights, grads, 2 moments
        self.epoch = 0
        self.history: dict[str, list[float | None]] = {}
        self.diverged = False

    # --- training -----------------------------------------------------------------------------

    def advance(self, epochs: int = 1) -> None:
        """Train ``epochs`` more epochs (``dp.fit`` on the training rows), then score the
        training and test rows."""
        with self.lock:
            if self.diverged:
                return
            result = fit(
                self.model,
                self.loss,
                self.optimizer,
                self.X_train,
                self.y_train,
                epochs=epochs,
                batch_size=self.settings.batch_size,
                rng=self.rng,
                verbose=0,
            )
            self.epoch += result.n_epochs
            self.diverged = result.diverged
            train = evaluate(self.model, self.loss, self.X_train, self.y_train)
            test = evaluate(self.model, self.loss, self.X_test, self.y_test)
            for name, value in [*train.items(), *(("test_" + k, v) for k, v in test.items())]:
                self.history.setdefault(name, []).append(value if math.isfinite(value) else None)

    # --- what the page draws ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Epoch, curves, the drawn part of each layer's weights, and for 2-D inputs each
        drawn unit's output and the prediction over the input plane."""
        with self.lock:
            layers = []
            for layer in self.model.layers:
                if layer.affine:
                    W = layer.state_dict()["weight"]
                    grad = dict(layer.named_parameters())["W"].grad  # the last batch's
                    layers.append(
                        {
                            "in": int(W.shape[1]),
                            "out": int(W.shape[0]),
                            "weight": np.round(W[:DRAWN_UNITS, :DRAWN_UNITS], 5).tolist(),
                            "bias": np.round(layer.state_dict()["bias"][:DRAWN_UNITS], 5).tolist(),
                            "grad": _significant(grad[:DRAWN_UNITS, :DRAWN_UNITS]),
                            "grad_norm": float(np.linalg.norm(grad)),
                        }
                    )
                elif layers:
                    layers[-1]["activation"] = type(layer).__name__
            return {
                "type": "snapshot",
                "epoch": self.epoch,
                "diverged": self.diverged,
                "task": self.prep.task,
                "classes": [str(c) for c in self.prep.class_names],
                "features": self.prep.feature_names(),
                "widths": self.widths,
                "drawn_units": DRAWN_UNITS,
                "layers": layers,
                "history": self.history,
                "plane": self._plane()
                if len(self.prep.columns) == 2 and not self.prep.categories
                else None,
            }

    def _plane(self) -> dict[str, Any]:
        """Each drawn unit's activation (percent of its layer's largest), and the predicted class
        and its probability (percent), or the predicted value, on a GRID × GRID lattice over the
        range of the training rows; rows of the lattice run along y, columns along x."""
        raw = self.train.features.numeric(self.prep.columns)
        lo, hi = raw.min(axis=0), raw.max(axis=0)
        pad = 0.1 * (hi - lo) + 1e-9
        xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID)
        ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID)
        points = np.array(np.meshgrid(xs, ys)).reshape(2, -1).T  # row-major: y outer, x inner
        x = self.prep.transform(Table.from_matrix(points, self.prep.columns)).astype(np.float32)
        units = []
        a = x
        for layer in self.model.layers[:-1]:
            a = layer.forward(a).copy()
            if not layer.affine:  # after an activation: the units' outputs
                shown = a[:, :DRAWN_UNITS]
                scale = float(np.max(np.abs(shown))) or 1.0
                # as integer percent of the layer's largest output: small messages
                units.append(np.rint(100 * shown.T / scale).astype(int).tolist())
        outputs = predict(self.model, self.loss, x)
        if self.prep.task == "classification":
            probabilities = class_probabilities(outputs)
            prediction = {
                "class": np.argmax(probabilities, axis=1).tolist(),
                "confidence": np.rint(100 * probabilities.max(axis=1)).astype(int).tolist(),
            }
            # each output unit: its probability, 0 → −100 (orange) to 1 → 100 (blue)
            shown = probabilities[:, -1:] if outputs.shape[1] == 1 else probabilities
            output = np.rint(200 * shown.T - 100)
        else:
            values = self.prep.decode(outputs[:, 0])
            prediction = {"value": np.round(values, 4).tolist()}
            centred = outputs - outputs.mean(axis=0)
            output = np.rint(100 * centred.T / (float(np.max(np.abs(centred))) or 1.0))
        test = self.test.features.numeric(self.prep.columns)
        return {
            "x": [float(xs[0]), float(xs[-1])],
            "y": [float(ys[0]), float(ys[-1])],
            "grid": GRID,
            "units": units,
            "output": output[:DRAWN_UNITS].astype(int).tolist(),
            "prediction": prediction,
            "points": np.round(raw, 4).tolist(),
            "labels": self.train.y.tolist(),
            "test_points": np.round(test, 4).tolist(),
            "test_labels": self.test.y.tolist(),
        }

    # --- one sample's back propagation --------------------------------------------------------

    def explain(self, index: int) -> dict[str, Any]:
        """``dp.explain`` on training row ``index`` (a float64 copy of the network: the
        training state is not touched)."""
        if not (is_int(index) and 0 <= index < len(self.X_train)):
            raise SettingsError(
                f"index: a training row from 0 to {len(self.X_train) - 1}, got {index!r}"
            )
        with self.lock:
            model = float64_copy(self.model)
            x = self.X_train[index : index + 1].astype(np.float64)
            y = self.y_train[index : index + 1]
            explanation = explain(
                model, self.loss, x, y, seed=self.settings.seed, tolerance=TOLERANCE
            )
        label = self.train.y[index]
        shown = self.prep.class_names[int(label)] if self.prep.task == "classification" else label
        return {
            "type": "explanation",
            "index": index,
            "target": str(shown),
            "explanation": explanation.to_dict(),
        }

    # --- export -------------------------------------------------------------------------------

    def model_file(self) -> bytes:
        """The network as a deltaprop model file, with its preprocessing."""
        with self.lock, tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "playground.safetensors")
            save(self.model, path, loss=self.loss, preprocessor=self.prep)
            with open(path, "rb") as file:
                return file.read()

    def code(self) -> str:
        """Python that rebuilds this network and trains it as far as this session did: for a
        built-in set, to the same weights."""
        s = self.settings
        if s.data in DATA_SETS:
            options = f", n={s.samples}, noise={s.noise}, seed={s.seed}"
            source = (
                f'dp.datasets.load("{s.data}"{options if s.data in datasets.SYNTHETIC else ""})'
            )
        else:
            drop = f", drop={tuple(s.drop)!r}" if s.drop else ""
            source = f'dp.datasets.from_file("your-data.csv", target={s.target!r}{drop})'
        loss = type(self.loss).__name__
        optimizer = type(self.optimizer).__name__
        return f'''"""The network of a deltaprop playground session, rebuilt and trained again."""

import numpy as np

import deltaprop as dp
from deltaprop.training import pipeline

data = {source}
run = pipeline.prepare(data, test_size=0.25, seed={s.seed}, dtype=np.float32,
                      standardize={s.standardize})
loss = dp.{loss}()
rng = np.random.default_rng({s.seed})
net = pipeline.build_mlp(run.prep, loss, {list(s.hidden)}, rng=rng, activation="{s.activation}",
                         init="{s.init}", dropout={s.dropout}, l2={s.l2})
opt = dp.{optimizer}(net.parameters(), lr={s.lr})
for epoch in range({self.epoch}):  # one fit per epoch, as the playground trains
    dp.fit(net, loss, opt, run.X_train, run.y_train, epochs=1, batch_size={s.batch_size},
           rng=rng, verbose=0)
print(dp.evaluate(net, loss, run.X_test, run.y_test))
dp.save(net, "playground.safetensors", loss=loss, preprocessor=run.prep)
'''


def _significant(values: np.ndarray) -> list[Any]:
    """An array as JSON with four significant digits: gradients span many orders of magnitude
    (a vanishing one is 1e-12), which rounding to fixed decimals would turn into zeros."""
    return [[float(f"{v:.4g}") for v in row] for row in np.asarray(values, dtype=np.float64)]
