"""Train the shipped sentiment and theme heads: ``koe train`` (deterministic for a given corpus).

Sentiment: corpus train sentences + train comments (+ chABSA's training documents), calibrated on the
validation split. Themes: corpus train comments, thresholds tuned on validation. Test-split figures
go into each head's ``meta.json``; ``benchmarks/quality.py`` reports the full table, JRTE included
(JRTE is never read here).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from models.bundle import ARTIFACTS_DIR
from models.encoders import DEFAULT_ENCODER, Encoder, load_encoder
from models.sentiment import SentimentHead
from models.taxonomy import Taxonomy, default_taxonomy
from models.themes import ThemeClassifier
from models.tokenizer import get_tokenizer
from pipelines.classify import Prepared, comment_embeddings, prepare
from pipelines.metrics import classification_report, expected_calibration_error, multilabel_report
from pipelines.normalize import normalize_text
from pipelines.records import SENTIMENT_LABELS
from pipelines.train.corpus import CorpusItem, corpus_stats, load_corpus
from pipelines.train.embedding_cache import CachedEmbedder
from pipelines.train.external import load_chabsa

__all__ = ["train_models"]

log = logging.getLogger(__name__)


def _comment_features(items: list[CorpusItem], embedder: CachedEmbedder) -> tuple[list[Prepared], np.ndarray]:
    tok = get_tokenizer()
    prepared = [prepare(it.text, tok) for it in items]
    clauses = [c for p in prepared for c in p.clauses]
    return prepared, comment_embeddings(embedder.encode(clauses), prepared)


def _theme_matrix(items: list[CorpusItem], ids: list[str]) -> np.ndarray:
    return np.array([[1 if t in it.themes else 0 for t in ids] for it in items], dtype=np.int64)


def train_models(
    out_dir: str | Path = ARTIFACTS_DIR,
    *,
    encoder: str | Encoder = DEFAULT_ENCODER,
    corpus_dir: str | Path | None = None,
    use_chabsa: bool = True,
    shared_data: str | Path | None = None,
    cache_dir: str | Path = ".koe-cache",
    taxonomy: Taxonomy | None = None,
    progress: bool = True,
) -> dict[str, object]:
    enc = load_encoder(encoder) if isinstance(encoder, str) else encoder
    tax = taxonomy or default_taxonomy()
    ids = tax.ids
    items = load_corpus(corpus_dir, ids)
    embedder = CachedEmbedder(enc, cache_dir, progress=progress)
    split = {name: [it for it in items if it.split == name] for name in ("train", "validation", "test")}

    prepared: dict[str, list[Prepared]] = {}
    comment_emb: dict[str, np.ndarray] = {}
    for name, part in split.items():
        prepared[name], comment_emb[name] = _comment_features(part, embedder)

    def sentence_data(part: list[CorpusItem]) -> tuple[np.ndarray, list[str]]:
        texts = [normalize_text(s) for it in part for s, _ in it.sentences]
        labels = [lab for it in part for _, lab in it.sentences]
        return embedder.encode(texts), labels

    # -- sentiment --------------------------------------------------------------------------------
    X_s, y_s = sentence_data(split["train"])
    X_parts, y_parts = [X_s, comment_emb["train"]], [*y_s, *(it.sentiment for it in split["train"])]
    chabsa_n = 0
    if use_chabsa:
        try:
            chabsa = load_chabsa(shared_data, split="train")
        except FileNotFoundError:
            log.warning("chABSA not found; training sentiment on the project corpus only")
            chabsa = []
        if chabsa:
            X_parts.append(embedder.encode([normalize_text(t) for t, _ in chabsa]))
            y_parts.extend(lab for _, lab in chabsa)
            chabsa_n = len(chabsa)
    X_val_s, y_val_s = sentence_data(split["validation"])
    X_cal = np.vstack([X_val_s, comment_emb["validation"]])
    y_cal = [*y_val_s, *(it.sentiment for it in split["validation"])]
    sentiment = SentimentHead().fit(
        np.vstack(X_parts), y_parts, X_cal=X_cal, y_cal=y_cal, encoder_name=enc.name
    )

    # -- themes -----------------------------------------------------------------------------------
    examples = {t.id: embedder.encode([normalize_text(e) for e in t.examples]) for t in tax.themes}
    themes = ThemeClassifier().fit(
        comment_emb["train"],
        [p.lemmas for p in prepared["train"]],
        _theme_matrix(split["train"], ids),
        ids,
        X_val=comment_emb["validation"],
        lemmas_val=[p.lemmas for p in prepared["validation"]],
        Y_val=_theme_matrix(split["validation"], ids),
        examples=examples,
        bank_texts=[p.text for p in prepared["train"]],
        encoder_name=enc.name,
    )

    # -- test-split figures -----------------------------------------------------------------------
    X_test_s, y_test_s = sentence_data(split["test"])
    proba = sentiment.predict_proba(X_test_s)
    sent_report = classification_report(
        y_test_s, [SENTIMENT_LABELS[i] for i in proba.argmax(1)], SENTIMENT_LABELS
    )
    comment_pred = sentiment.predict(comment_emb["test"])
    comment_report = classification_report(
        [it.sentiment for it in split["test"]], comment_pred, SENTIMENT_LABELS
    )
    p_test = themes.predict_proba(comment_emb["test"], [p.lemmas for p in prepared["test"]])
    theme_report = multilabel_report(_theme_matrix(split["test"], ids), p_test >= themes.thresholds_, ids)
    idx = {lab: i for i, lab in enumerate(SENTIMENT_LABELS)}
    metrics = {
        "sentence_sentiment_test": {k: sent_report[k] for k in ("n", "accuracy", "macro_f1")},
        "comment_sentiment_test": {k: comment_report[k] for k in ("n", "accuracy", "macro_f1")},
        "sentence_ece_test": expected_calibration_error(proba, np.array([idx[v] for v in y_test_s])),
        "themes_test": {
            "micro_f1": theme_report["micro_f1"],
            "macro_f1": theme_report["macro_f1"],
            "per_theme_f1": {k: round(v["f1"], 4) for k, v in theme_report["per_label"].items()},  # type: ignore[union-attr]
        },
    }
    stats = corpus_stats(items)
    from models.base import data_digest

    digest = data_digest(it.text for it in items)
    common = {"corpus_digest": digest, "corpus": stats["splits"], "metrics": metrics}
    out = Path(out_dir)
    sentiment.save(
        out / "sentiment",
        meta={"name": "koe-sentiment-lr", "chabsa_train_sentences": chabsa_n, **common},
    )
    themes.save(out / "themes", meta={"name": "koe-themes-lr", "taxonomy_version": tax.version, **common})
    return {"metrics": metrics, "corpus": stats}
