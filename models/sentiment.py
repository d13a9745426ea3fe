"""Sentiment head: positive / neutral / negative with calibrated probabilities.

A multinomial logistic regression on sentence embeddings, fitted with scikit-learn and then
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

from models.base import NotFittedError, check_encoder, read_artifact, write_artifact
from pipelines.errors import ConfigError
from pipelines.records import SENTIMENT_LABELS

__all__ = ["SentimentHead", "softmax"]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SentimentHead:
    """Logistic-regression sentiment head on embeddings.

    Parameters
    ----------
    C : inverse L2 regularisation strength of the regression.
    class_weight : "balanced" or None.
    """

    _parameter_constraints: ClassVar[dict[str, tuple[object, ...]]] = {"class_weight": ("balanced", None)}

    def __init__(self, C: float = 2.0, class_weight: str | None = "balanced") -> None:
        self.C = C
        self.class_weight = class_weight

    def _validate_params(self) -> None:
        if not (isinstance(self.C, int | float) and self.C > 0):
            raise ConfigError(f"The 'C' parameter of SentimentHead must be a float > 0; got {self.C!r}")
        if self.class_weight not in self._parameter_constraints["class_weight"]:
            raise ConfigError(
                f"The 'class_weight' parameter of SentimentHead must be 'balanced' or None; got {self.class_weight!r}"
            )

    def fit(
        self,
        X: np.ndarray,
        y: list[str],
        *,
        X_cal: np.ndarray | None = None,
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
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000)
        model.fit(X, np.array([index[v] for v in y]))
        coef = np.zeros((len(self.labels_), X.shape[1]), dtype=np.float32)
        intercept = np.zeros(len(self.labels_), dtype=np.float32)
        for row, cls in enumerate(model.classes_):
            coef[cls] = model.coef_[row]
            intercept[cls] = model.intercept_[row]
        self.coef_, self.intercept_ = coef, intercept
        self.temperature_ = 1.0
        self.encoder_ = encoder_name
        if X_cal is not None and y_cal is not None and len(y_cal):
            self.temperature_ = self._fit_temperature(X_cal, np.array([index[v] for v in y_cal]))
        return self

    def _logits(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32) @ self.coef_.T + self.intercept_

    def _fit_temperature(self, X: np.ndarray, y: np.ndarray) -> float:
        logits = self._logits(X).astype(np.float64)

        def nll(t: float) -> float:
            p = softmax(logits / t)
            return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

        return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "This SentimentHead instance is not fitted yet; call 'fit' or 'SentimentHead.load(dir)' first"
            )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return softmax(self._logits(X) / self.temperature_)

    def predict(self, X: np.ndarray) -> list[str]:
        return [self.labels_[i] for i in self.predict_proba(X).argmax(axis=1)]

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
        self._check_fitted()
        return write_artifact(
            directory,
            config={
                "component": "sentiment",
                "C": self.C,
                "class_weight": self.class_weight,
                "labels": self.labels_,
                "temperature": self.temperature_,
            },
            arrays={"coef": self.coef_, "intercept": self.intercept_},
            meta={"encoder": self.encoder_, **(meta or {})},
        )

    @classmethod
    def load(cls, directory: str | Path, *, encoder_name: str | None = None) -> SentimentHead:
        config, arrays, meta = read_artifact(directory)
        if encoder_name is not None:
            check_encoder(meta.get("encoder"), encoder_name, str(directory))
        head = cls(C=config["C"], class_weight=config["class_weight"])
        head.labels_ = list(config["labels"])
        head.temperature_ = float(config["temperature"])
        head.coef_ = arrays["coef"].astype(np.float32)
        head.intercept_ = arrays["intercept"].astype(np.float32)
        head.encoder_ = meta.get("encoder")
        head.meta_ = meta
        return head
