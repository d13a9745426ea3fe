"""Sentiment head: positive / neutral / negative with calibrated probabilities.

A multinomial logistic regression on ``[embedding | lemma TF-IDF | char n-gram TF-IDF]`` (see
``models.features``), fitted with scikit-learn and then
calibrated by temperature scaling on a held-out set (one scalar, so the ranking the regression
learnt is kept while the confidence matches the observed accuracy). Inference is a matrix product in
numpy: scikit-learn is needed to fit, not to predict. Labels come from the saved config, never
from code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize_scalar

from models.base import NotFittedError, artifact_fields, check_encoder, read_artifact, write_artifact
from models.features import Featurizer, LinearCoefficients, TextBatch
from pipelines.errors import ConfigError
from pipelines.records import SENTIMENT_LABELS

__all__ = ["SentimentHead", "softmax"]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SentimentHead(LinearCoefficients):
    """Logistic-regression sentiment head on embeddings and lexical features.

    Parameters
    ----------
    C : inverse L2 regularisation strength of the regression.
    class_weight : "balanced" or None.
    lemma_weight, char_weight : scale of the two lexical blocks against the embedding (0 switches one off).
    """

    meta_: dict[str, Any]  # meta.json of a loaded artifact
    _parameter_constraints: ClassVar[dict[str, tuple[object, ...]]] = {"class_weight": ("balanced", None)}

    def __init__(
        self,
        C: float = 4.0,  # `koe train` picks C and class_weight on the validation split (SENTIMENT_C_GRID)
        class_weight: str | None = "balanced",
        lemma_weight: float = 0.5,
        char_weight: float = 0.5,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.lemma_weight = lemma_weight
        self.char_weight = char_weight

    def _validate_params(self) -> None:
        if not (isinstance(self.C, int | float) and self.C > 0):
            raise ConfigError(f"The 'C' parameter of SentimentHead must be a float > 0; got {self.C!r}")
        if self.class_weight not in self._parameter_constraints["class_weight"]:
            raise ConfigError(
                f"The 'class_weight' parameter of SentimentHead must be 'balanced' or None; got {self.class_weight!r}"
            )

    def fit(
        self,
        batch: TextBatch,
        y: list[str],
        *,
        cal: TextBatch | None = None,
        y_cal: list[str] | None = None,
        encoder_name: str | None = None,
    ) -> SentimentHead:
        from sklearn.linear_model import LogisticRegression

        self._validate_params()
        unknown = sorted(set(y) - set(SENTIMENT_LABELS))
        if unknown:
            raise ConfigError(f"unknown sentiment labels {unknown}; expected {list(SENTIMENT_LABELS)}")
        self.labels_ = list(SENTIMENT_LABELS)
        index = {label: i for i, label in enumerate(self.labels_)}
        self.features_ = Featurizer(self.lemma_weight, self.char_weight).fit(batch)
        X = self.features_.transform(batch)
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=3000)
        model.fit(X, np.array([index[v] for v in y]))
        coef = np.zeros((len(self.labels_), X.shape[1]), dtype=np.float32)
        intercept = np.zeros(len(self.labels_), dtype=np.float32)
        for row, cls in enumerate(model.classes_):
            coef[cls] = model.coef_[row]
            intercept[cls] = model.intercept_[row]
        self.coef_, self.intercept_ = coef, intercept
        self.temperature_ = 1.0
        self.encoder_ = encoder_name
        if cal is not None and y_cal is not None and len(y_cal):
            self.temperature_ = self._fit_temperature(cal, np.array([index[v] for v in y_cal]))
        return self

    def _logits(self, batch: TextBatch) -> np.ndarray:
        return self.features_.logits(batch, self._coef_t) + self.intercept_

    def _fit_temperature(self, batch: TextBatch, y: np.ndarray) -> float:
        logits = self._logits(batch).astype(np.float64)

        def nll(t: float) -> float:
            p = softmax(logits / t)
            return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

        return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "This SentimentHead instance is not fitted yet; call 'fit' or 'SentimentHead.load(dir)' first"
            )

    def predict_proba(self, batch: TextBatch) -> np.ndarray:
        self._check_fitted()
        if not len(batch):
            return np.zeros((0, len(self.labels_)), dtype=np.float32)
        return softmax(self._logits(batch) / self.temperature_)

    def predict(self, batch: TextBatch) -> list[str]:
        return [self.labels_[i] for i in self.predict_proba(batch).argmax(axis=1)]

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
        self._check_fitted()
        return write_artifact(
            directory,
            config={
                "component": "sentiment",
                "C": self.C,
                "class_weight": self.class_weight,
                "lemma_weight": self.lemma_weight,
                "char_weight": self.char_weight,
                "labels": self.labels_,
                "temperature": self.temperature_,
                "features": self.features_.get_config(),
            },
            arrays={"coef": self.coef_, "intercept": self.intercept_, **self.features_.get_arrays()},
            meta={"encoder": self.encoder_, **(meta or {})},
        )

    @classmethod
    def load(cls, directory: str | Path, *, encoder_name: str | None = None) -> SentimentHead:
        config, arrays, meta = read_artifact(directory)
        if encoder_name is not None:
            check_encoder(meta.get("encoder"), encoder_name, str(directory))
        with artifact_fields(directory):
            head = cls(config["C"], config["class_weight"], config["lemma_weight"], config["char_weight"])
            head.features_ = Featurizer.from_saved(config["features"], arrays)
            head.labels_ = list(config["labels"])
            head.temperature_ = float(config["temperature"])
            head.coef_ = arrays["coef"].astype(np.float32)
            head.intercept_ = arrays["intercept"].astype(np.float32)
            head.encoder_ = meta.get("encoder")
            head.meta_ = meta
        return head
