"""Multi-label theme classifier: embeddings + lexical TF-IDF, one calibrated regression per theme.

- Each trained theme has a logistic regression on ``[embedding | lemma TF-IDF | char n-gram TF-IDF]``
  (``models.features``) and a decision threshold tuned for F1 on out-of-fold predictions.
- Themes a team adds with only a handful of examples work at once through a prototype score: the
  best cosine between the text and the theme's examples minus half the best cosine to any trained
  theme's examples (both after removing the corpus-mean direction that all e5 vectors share), mapped to a
  probability by a curve fitted on the default themes, each in turn treated as known only by its
  examples, with its midpoint at the best F0.5 (a theme known from five sentences should rather
  miss than invent). Sentences an analyst decided are *not* about the theme (its counter-examples,
  ``pipelines.labelling``) count against it at full weight.
- The embedding block is the comment's clause mean and the comment encoded whole, side by side
  (``Featurizer(whole_text=True)``): the mean of short clauses blurs what one of them says, the whole
  comment loses it among the rest; together they read better than either (2026-12-07, fifth session,
  validation micro-F1 with the co-theme stage: clause mean 0.814, whole 0.820, both 0.822).
- A second, co-theme stage reads every theme's first-stage logit (a small L2-strong regression per theme
  on out-of-fold logits), so themes that travel together or exclude each other inform one another
  (validation micro-F1 0.780 -> 0.795; the theme's own logit alone, a mere recalibration, gave 0.780),
  and, per theme, the vote of the ``knn`` labelled comments nearest in that embedding block (similarity
  weighted, as a logit): a second, local view of the same vectors that a linear regression cannot take
  (0.822 -> 0.833 on validation; k 10-40 and temperature 10-50 all read 0.817-0.833). It also reads,
  per theme, the largest first-stage logit among the comment's clauses (``clause_max``): a theme said in
  one clause of several is diluted in the comment's vectors and outvoted by its neighbours, which lean
  to the comment's main topic (2026-12-07, sixth session: 0.833 -> 0.835 on validation; five-fold
  cross-validation over train + validation 0.873 -> 0.877, ahead in 99% of paired bootstrap resamples;
  the clauses' mean logit instead read 0.828 against 0.832).
- ``needs_review`` flags scores close to a threshold.
- Evidence: the lemmas with the largest positive contribution, and the nearest labelled examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.base import NotFittedError, artifact_fields, check_encoder, read_artifact, write_artifact
from models.features import Featurizer, LinearCoefficients, TextBatch

__all__ = ["ThemeClassifier"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


# the co-theme stage reads first-stage logits clipped to probabilities in [1e-6, 1 - 1e-6]
_STACK_CLIP = 13.8


def _best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    if not np.any(y == 1):
        return 0.5  # nothing to tune on: keep the calibrated midpoint
    best_t, best_f1 = 0.5, -1.0
    for t in np.arange(0.15, 0.86, 0.025):
        pred = p >= t
        tp = float(np.sum(pred & (y == 1)))
        fp = float(np.sum(pred & (y == 0)))
        fn = float(np.sum(~pred & (y == 1)))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1 + 1e-9:
            best_t, best_f1 = float(t), f1
    return best_t


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def _unit_rows(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


_BLAS: Any = None


def _blas_on_this_thread() -> Any:
    """A context in which numpy's BLAS runs on the calling thread alone.

    The votes' similarity product (texts x 4,443 x 768) is large enough for OpenBLAS to wake its threads,
    which then spin beside onnxruntime's and slow the encoder: ``POST /v1/classify`` for one short text went
    from 11.6 to 42 ms at the median (``benchmarks/api_latency.py``) until the product ran single-threaded.
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def knn_votes(
    X: np.ndarray,
    bank: np.ndarray,
    labels: np.ndarray,
    k: int,
    temperature: float,
) -> np.ndarray:
    """Per theme, the logit of the similarity-weighted share of the ``k`` nearest bank rows carrying it.

    ``X`` and ``bank`` are unit rows (cosine = dot product); weights are ``exp(temperature * cosine)`` over
    the ``k`` nearest; shares are clipped to [0.02, 0.98] so one neighbour cannot make a vote infinite.

    A text's votes do not depend on its batch: a float32 product, whose rounding does (one row takes
    another BLAS kernel than twenty), only shortlists the ``k + _SHORTLIST_MARGIN`` nearest rows; their
    cosines are then computed in float64 row by row, and ties go to the lower bank row. (A float64 product
    over the whole bank cost 3-4 times the float32 one for a request of a few texts.)
    """
    out = np.zeros((len(X), labels.shape[1]), dtype=np.float64)
    k = min(k, len(bank))
    if not len(X) or k <= 0:
        return out
    bank32 = np.asarray(bank, dtype=np.float32)
    short = min(k + _SHORTLIST_MARGIN, len(bank))
    for start in range(0, len(X), 256):  # a block of queries at a time: the similarity matrix stays small
        block = np.asarray(X[start : start + 256], dtype=np.float64)
        with _blas_on_this_thread():
            approx = block.astype(np.float32) @ bank32.T
        shortlist = np.sort(np.argpartition(-approx, short - 1, axis=1)[:, :short], axis=1)
        exact = np.einsum("nd,nsd->ns", block, bank32[shortlist].astype(np.float64))
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]  # stable: ties to the lower bank row
        near, s = np.take_along_axis(shortlist, order, axis=1), np.take_along_axis(exact, order, axis=1)
        w = np.exp(temperature * (s - s.max(axis=1, keepdims=True)))
        w /= w.sum(axis=1, keepdims=True)
        share = np.einsum("nk,nkt->nt", w, labels[near].astype(np.float64))
        out[start : start + len(block)] = _logit(np.clip(share, 0.02, 0.98))
    return out


# rows beyond k that the float32 shortlist keeps; float32 rounding moves a cosine by ~1e-7, so the true k
# nearest are always among them
_SHORTLIST_MARGIN = 16


def best_clause_logits(
    batch: TextBatch, logits: np.ndarray, score: Callable[[TextBatch], np.ndarray]
) -> np.ndarray:
    """Per text and theme, the largest of ``score`` over the text's clauses. ``logits`` are ``score`` of the
    texts themselves: what a batch without clauses (each text its own only clause) returns, and what a
    text without any clause gets."""
    if batch.clauses is None:
        return logits
    clauses, owner = batch.clause_batch()
    best = np.full(logits.shape, -np.inf, dtype=np.float64)
    if len(clauses):
        np.maximum.at(best, owner, np.asarray(score(clauses), dtype=np.float64))
    return np.where(np.isneginf(best), logits, best)  # a text with no clause (an empty one): its own


# Leave-one-theme-out on the corpus test split (each default theme in turn known only by its five
# examples, e5-int8): weight 0 -> F1 0.353 / precision 0.50; 0.5 -> 0.385 / 0.57; 1.0 -> 0.377 / 0.57
RIVAL_WEIGHT = 0.5


def _best_fbeta_cut(y: np.ndarray, score: np.ndarray, beta: float) -> float:
    """The score cut (among the score percentiles 50..99.5) with the best F-beta for ``score >= cut``."""
    best_cut, best_f = float(np.quantile(score, 0.9)), -1.0
    for cut in np.quantile(score, np.arange(0.5, 0.996, 0.005)):
        pred = score >= cut
        tp = float(np.sum(pred & (y == 1)))
        precision = tp / max(float(pred.sum()), 1.0)
        recall = tp / max(float((y == 1).sum()), 1.0)
        b2 = beta * beta
        f = (1 + b2) * precision * recall / (b2 * precision + recall) if tp else 0.0
        if f > best_f + 1e-9:
            best_cut, best_f = float(cut), f
    return best_cut


class ThemeClassifier(LinearCoefficients):
    meta_: dict[str, Any]  # meta.json of a loaded artifact

    def __init__(
        self,
        C: float = 4.0,
        lemma_weight: float = 0.5,
        char_weight: float = 1.0,
        review_margin: float = 0.06,
        folds: int = 5,
        stack_C: float | None = 0.1,
        whole_text: bool = True,
        knn: int = 15,
        knn_temperature: float = 20.0,
        clause_max: bool = True,
    ) -> None:
        self.C = C
        self.folds = folds
        self.stack_C = stack_C  # None: no co-theme stage
        self.lemma_weight = lemma_weight
        self.char_weight = char_weight
        self.review_margin = review_margin
        self.whole_text = whole_text
        self.knn = knn if stack_C is not None else 0  # the votes are read by the co-theme stage; 0: none
        self.knn_temperature = knn_temperature
        self.clause_max = clause_max and stack_C is not None  # read by the co-theme stage too

    def _featurizer(self) -> Featurizer:
        return Featurizer(self.lemma_weight, self.char_weight, whole_text=self.whole_text)

    # -- fitting -----------------------------------------------------------------------------------
    def fit(
        self,
        batch: TextBatch,
        Y: np.ndarray,
        theme_ids: list[str],
        *,
        examples: dict[str, np.ndarray],
        bank_texts: list[str] | None = None,
        encoder_name: str | None = None,
    ) -> ThemeClassifier:
        """Tune each theme's threshold on out-of-fold predictions, then fit on all of ``batch``.

        ``batch`` is every labelled comment available for fitting (the corpus's train and validation
        splits): ``folds``-fold out-of-fold probabilities give a threshold per theme from ~4,000 comments
        instead of a few hundred, and the final regressions see all of them. The co-theme stage is
        fitted on the first stage's out-of-fold logits (the comment's and, with ``clause_max``, its best
        clause's, each from a fold that did not see the comment) and out-of-fold neighbour votes, and its
        own out-of-fold probabilities (folds over those inputs) give the thresholds. ``examples`` maps each theme
        id to the embeddings of its taxonomy example sentences; ``bank_texts`` (aligned with ``batch``)
        are kept as nearest-example evidence.
        """
        Y = np.asarray(Y)
        self.theme_ids_ = list(theme_ids)
        fold = np.arange(len(batch)) % self.folds
        oof = np.zeros(Y.shape, dtype=np.float64)  # first-stage out-of-fold logits
        self.view_center_ = batch.dense(self.whole_text).mean(axis=0)
        view = self.view(batch)
        votes = np.zeros(Y.shape, dtype=np.float64)  # out-of-fold nearest-neighbour votes
        best = np.zeros(Y.shape, dtype=np.float64)  # out-of-fold best-clause logits
        for f in range(self.folds):
            train, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            feats = self._featurizer().fit(batch.take(train))
            coef, intercept = self._regressions(feats.transform(batch.take(train)), Y[train])
            held_batch = batch.take(held)

            def score(
                b: TextBatch,
                feats: Featurizer = feats,
                coef: np.ndarray = coef,
                intercept: np.ndarray = intercept,
            ) -> np.ndarray:
                return np.asarray(feats.transform(b) @ coef.T) + intercept

            oof[held] = score(held_batch)
            if self.knn:
                votes[held] = knn_votes(view[held], view[train], Y[train], self.knn, self.knn_temperature)
            if self.clause_max:
                best[held] = best_clause_logits(held_batch, oof[held], score)
        oof = self._stack_input(oof, votes, best)
        if self.stack_C is None:
            self.stack_coef_, self.stack_intercept_ = None, None
            oof = _sigmoid(oof)
        else:
            self.stack_coef_, self.stack_intercept_ = self._regressions(oof, Y, C=self.stack_C)
            stacked = np.zeros(Y.shape, dtype=np.float64)
            for f in range(self.folds):
                train, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
                coef, intercept = self._regressions(oof[train], Y[train], C=self.stack_C)
                stacked[held] = _sigmoid(oof[held] @ coef.T + intercept)
            oof = stacked
        self.thresholds_ = np.array(
            [_best_f1_threshold(Y[:, k], oof[:, k]) for k in range(len(theme_ids))], dtype=np.float32
        )
        self.features_ = self._featurizer().fit(batch)
        self.coef_, self.intercept_ = self._regressions(self.features_.transform(batch), Y)
        self.encoder_ = encoder_name
        self.center_ = np.asarray(batch.emb, dtype=np.float32).mean(axis=0)
        self._fit_prototype_curve(batch.emb, Y, examples)
        self.bank_ = view.astype(np.float16).astype(np.float32)  # as saved: a loaded head votes the same
        self.bank_labels_ = np.asarray(Y, dtype=np.uint8)
        self.bank_texts_ = list(bank_texts) if bank_texts is not None else [""] * len(batch)
        return self

    def _regressions(self, F: Any, Y: np.ndarray, C: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One class-balanced logistic regression per theme column of ``Y`` (at ``C``, default ``self.C``)."""
        from sklearn.linear_model import LogisticRegression

        coef = np.zeros((Y.shape[1], F.shape[1]), dtype=np.float32)
        intercept = np.zeros(Y.shape[1], dtype=np.float32)
        for k in range(Y.shape[1]):
            if len(np.unique(Y[:, k])) < 2:
                intercept[k] = -10.0  # no positive (or no negative) example: the theme never fires
                continue
            model = LogisticRegression(C=C or self.C, class_weight="balanced", max_iter=3000).fit(F, Y[:, k])
            coef[k], intercept[k] = model.coef_[0], model.intercept_[0]
        return coef, intercept

    def _fit_prototype_curve(self, X: np.ndarray, Y: np.ndarray, examples: dict[str, np.ndarray]) -> None:
        """Map the prototype margin to a probability, pooled over the default themes (each in turn
        treated as if known only by its examples)."""
        from sklearn.linear_model import LogisticRegression

        sims, targets = [], []
        owned = [
            (k, examples[t]) for k, t in enumerate(self.theme_ids_) if t in examples and len(examples[t])
        ]
        self.examples_ = (
            np.concatenate([ex for _, ex in owned]).astype(np.float32)
            if owned
            else np.zeros((0, X.shape[1]), np.float32)
        )
        self.examples_owner_ = (
            np.concatenate([np.full(len(ex), k) for k, ex in owned]) if owned else np.zeros(0, int)
        )
        for k, _ in owned:
            sims.append(self._prototype_margin(X, self.examples_[self.examples_owner_ == k], exclude=k))
            targets.append(Y[:, k])
        s = np.concatenate(sims) if sims else np.zeros(0)
        t = np.concatenate(targets) if targets else np.zeros(0)
        if len(np.unique(t)) < 2:  # no trained theme with examples (a team's taxonomy), or one class only
            self.proto_a_, self.proto_b_ = 20.0, 0.0  # fallback: probability 0.5 at margin 0
            return
        model = LogisticRegression(C=10.0).fit(s.reshape(-1, 1), t)
        # keep the slope, put the midpoint (custom themes are shown at p >= 0.5) at the cosine with
        # the best F0.5: a theme known from five sentences should rather miss than invent
        a = float(model.coef_[0, 0])
        self.proto_a_, self.proto_b_ = a, -a * _best_fbeta_cut(t, s, beta=0.5)

    # -- prediction --------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "This ThemeClassifier instance is not fitted yet; call 'fit' or 'ThemeClassifier.load(dir)' first"
            )

    def predict_proba(self, batch: TextBatch) -> np.ndarray:
        """(n, n_trained_themes) probabilities for the trained themes."""
        self._check_fitted()
        if not len(batch):
            return np.zeros((0, len(self.theme_ids_)), dtype=np.float32)
        z = self._first_stage(batch)
        if self.stack_coef_ is not None:
            votes = self.knn_votes(batch) if self.knn else None
            best = best_clause_logits(batch, z, self._first_stage) if self.clause_max else None
            z = self._stack_input(z, votes, best) @ self.stack_coef_.T + self.stack_intercept_
        return _sigmoid(z)

    def _first_stage(self, batch: TextBatch) -> np.ndarray:
        return np.asarray(self.features_.logits(batch, self._coef_t) + self.intercept_, dtype=np.float64)

    def _stack_input(self, z: np.ndarray, votes: np.ndarray | None, best: np.ndarray | None) -> np.ndarray:
        """What the co-theme stage reads: ``[clipped logits | votes (knn) | clipped best-clause logits
        (clause_max)]``."""
        parts = [np.clip(z, -_STACK_CLIP, _STACK_CLIP)]
        if self.knn and votes is not None:
            parts.append(votes)
        if self.clause_max and best is not None:
            parts.append(np.clip(best, -_STACK_CLIP, _STACK_CLIP))
        return np.hstack(parts) if len(parts) > 1 else parts[0]

    def view(self, batch: TextBatch) -> np.ndarray:
        """The texts' embedding block (``Featurizer``'s) minus the fitting comments' mean, as unit rows: the
        space the nearest-neighbour votes and ``nearest_examples`` compare texts in."""
        return _unit_rows(batch.dense(self.whole_text).astype(np.float64) - self.view_center_)

    def knn_votes(self, batch: TextBatch) -> np.ndarray:
        """Per trained theme, the vote of the ``knn`` fitting comments nearest to each text (``knn_votes``)."""
        return knn_votes(self.view(batch), self.bank_, self.bank_labels_, self.knn, self.knn_temperature)

    def _centred(self, X: np.ndarray) -> np.ndarray:
        """Embeddings minus the corpus mean, re-normalised. e5 vectors share a large common component
        (two unrelated comments sit at cosine ~0.8); without it, similarity reflects the topic."""
        Xc = np.asarray(X, dtype=np.float64) - self.center_
        return Xc / np.maximum(np.linalg.norm(Xc, axis=1, keepdims=True), 1e-12)

    def _prototype_margin(
        self,
        X: np.ndarray,
        examples: np.ndarray,
        exclude: int = -1,
        counter_examples: np.ndarray | None = None,
    ) -> np.ndarray:
        """Best centred cosine to the theme's examples minus the larger of ``RIVAL_WEIGHT`` x the best to
        the trained themes' examples (a text near a known theme needs to be nearer still to the new one)
        and the best to the theme's counter-examples, at full weight: a text an analyst said is *not* the
        theme is no rival that may also apply, so a text nearer to one than to every example has a margin
        of at most 0 (the shipped curve's midpoint is at 0.22)."""
        Xc = self._centred(X)
        own = (Xc @ self._centred(examples).T).max(axis=1)
        against = np.zeros(len(Xc), dtype=np.float64)
        others = self.examples_[self.examples_owner_ != exclude]
        if len(others):
            against = RIVAL_WEIGHT * (Xc @ self._centred(others).T).max(axis=1)
        if counter_examples is not None and len(counter_examples):
            against = np.maximum(against, (Xc @ self._centred(counter_examples).T).max(axis=1))
        return own - against

    def prototype_proba(
        self, X_emb: np.ndarray, examples: np.ndarray, counter_examples: np.ndarray | None = None
    ) -> np.ndarray:
        """Probability that each text belongs to a theme known only by its example embeddings (and, if
        given, the embeddings of sentences decided not to be about it: its counter-examples)."""
        self._check_fitted()
        if not len(examples):
            return np.zeros(len(X_emb), dtype=np.float32)
        margin = self._prototype_margin(X_emb, examples, counter_examples=counter_examples)
        return _sigmoid(self.proto_a_ * margin + self.proto_b_)

    def needs_review(self, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """True where any theme score is within ``review_margin`` of its threshold."""
        return np.any(np.abs(p - thresholds) < self.review_margin, axis=1)

    # -- explanations ------------------------------------------------------------------------------
    def lemma_evidence(self, lemmas: Sequence[str], theme_index: int, top: int = 3) -> list[str]:
        self._check_fitted()
        scored = []
        for term in set(lemmas):
            col = self.features_.lemma_column(term)
            if col is not None:
                weight = float(self.coef_[theme_index, col])
                if weight > 0:
                    scored.append((weight, term))
        return [term for _, term in sorted(scored, reverse=True)[:top]]

    def nearest_examples(self, batch: TextBatch, row: int, theme_index: int, top: int = 2) -> list[str]:
        """The fitting comments carrying the theme that are nearest to ``batch``'s text ``row``."""
        self._check_fitted()
        mask = self.bank_labels_[:, theme_index] == 1
        if not mask.any():
            return []
        idx = np.flatnonzero(mask)
        sims = self.bank_[idx] @ self.view(batch.take([row]))[0]
        order = idx[np.argsort(-sims)[:top]]
        return [self.bank_texts_[i] for i in order if self.bank_texts_[i]]

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
        self._check_fitted()
        return write_artifact(
            directory,
            config={
                "component": "themes",
                "C": self.C,
                "lemma_weight": self.lemma_weight,
                "char_weight": self.char_weight,
                "review_margin": self.review_margin,
                "folds": self.folds,
                "stack_C": self.stack_C,
                "whole_text": self.whole_text,
                "knn": self.knn,
                "knn_temperature": self.knn_temperature,
                "clause_max": self.clause_max,
                "theme_ids": self.theme_ids_,
                "thresholds": [round(float(t), 4) for t in self.thresholds_],
                "prototype_curve": [self.proto_a_, self.proto_b_],
                "features": self.features_.get_config(),
                "bank_texts": self.bank_texts_,
            },
            arrays={
                "coef": self.coef_.astype(np.float16),
                "intercept": self.intercept_,
                **self.features_.get_arrays(),
                "bank": self.bank_.astype(np.float16),
                "bank_labels": self.bank_labels_,
                "center": self.center_,
                "view_center": self.view_center_,
                "examples": self.examples_.astype(np.float16),
                "examples_owner": self.examples_owner_.astype(np.int16),
                **(
                    {"stack_coef": self.stack_coef_, "stack_intercept": self.stack_intercept_}
                    if self.stack_coef_ is not None and self.stack_intercept_ is not None
                    else {}
                ),
            },
            meta={"encoder": self.encoder_, **(meta or {})},
        )

    @classmethod
    def load(cls, directory: str | Path, *, encoder_name: str | None = None) -> ThemeClassifier:
        config, arrays, meta = read_artifact(directory)
        if encoder_name is not None:
            check_encoder(meta.get("encoder"), encoder_name, str(directory))
        with artifact_fields(directory):
            clf = cls(
                config["C"],
                config["lemma_weight"],
                config["char_weight"],
                config["review_margin"],
                config["folds"],
                config.get("stack_C"),  # artifacts from before the co-theme stage have none
                # artifacts from before 2026-12-07's fifth session read the clause mean alone, with no votes
                config.get("whole_text", False),
                config.get("knn", 0),
                config.get("knn_temperature", 20.0),
                config.get("clause_max", False),  # heads from before the sixth session read no clause logits
            )
            clf.theme_ids_ = list(config["theme_ids"])
            clf.thresholds_ = np.array(config["thresholds"], dtype=np.float32)
            clf.proto_a_, clf.proto_b_ = (float(v) for v in config["prototype_curve"])
            clf.features_ = Featurizer.from_saved(config["features"], arrays)
            clf.coef_ = arrays["coef"].astype(np.float32)
            clf.intercept_ = arrays["intercept"].astype(np.float32)
            clf.stack_coef_, clf.stack_intercept_ = None, None
            if "stack_coef" in arrays:
                clf.stack_coef_ = arrays["stack_coef"].astype(np.float32)
                clf.stack_intercept_ = arrays["stack_intercept"].astype(np.float32)
            clf.bank_ = arrays["bank"].astype(np.float32)
            clf.bank_labels_ = arrays["bank_labels"]
            clf.center_ = arrays["center"].astype(np.float32)
            clf.view_center_ = (
                arrays["view_center"].astype(np.float32) if "view_center" in arrays else clf.center_
            )
            clf.examples_ = arrays["examples"].astype(np.float32)
            clf.examples_owner_ = arrays["examples_owner"].astype(np.int64)
            clf.bank_texts_ = list(config["bank_texts"])
            clf.encoder_ = meta.get("encoder")
            clf.meta_ = meta
        return clf
