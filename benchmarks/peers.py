"""Dictionary-based Japanese sentiment peers (asari, oseti, pymlask) for ``benchmarks/quality.py``.

Self-contained on purpose (no koe imports), so it can run in a virtualenv of its own:

    python -m venv /tmp/peers && /tmp/peers/bin/pip install oseti ipadic asari pymlask 'packaging<22'
    python benchmarks/quality.py --peers-python /tmp/peers/bin/python

Reads a JSON list of texts on stdin; prints {peer: [label, ...]} or {peer: "not available (...)"}.
asari needs the en_US.UTF-8 locale (Debian: locales + locale-gen). Peers without a neutral class answer
positive or negative only; oseti and pymlask answer neutral when they find no polar word.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable


def peer_predictors() -> dict[str, Callable[[str], str] | str]:
    """Dictionary-based Japanese sentiment tools, each mapped to positive/neutral/negative."""
    peers: dict[str, Callable[[str], str] | str] = {}
    try:
        import ipadic
        import oseti

        analyzer = oseti.Analyzer(mecab_args=f"-r /dev/null -d {ipadic.DICDIR}")

        def oseti_label(text: str) -> str:
            s = sum(analyzer.analyze(text) or [0])
            return "positive" if s > 0 else "negative" if s < 0 else "neutral"

        oseti_label("テスト")
        peers["oseti"] = oseti_label
    except Exception as exc:  # a peer that does not install or run is reported, not fatal
        peers["oseti"] = f"not available ({type(exc).__name__}: {str(exc)[:60]})"
    try:
        import ipadic
        from mlask import MLAsk

        mlask = MLAsk(f"-r /dev/null -d {ipadic.DICDIR}")

        def mlask_label(text: str) -> str:
            res = mlask.analyze(text)
            orient = (res or {}).get("orientation")
            return {"POSITIVE": "positive", "NEGATIVE": "negative"}.get(str(orient), "neutral")

        mlask_label("テスト")
        peers["pymlask"] = mlask_label
    except Exception as exc:
        peers["pymlask"] = f"not available ({type(exc).__name__}: {str(exc)[:60]})"
    try:
        from asari.api import Sonar

        sonar = Sonar()

        def asari_label(text: str) -> str:
            res = sonar.ping(text=text)
            return "positive" if res["top_class"] == "positive" else "negative"

        asari_label("テスト")
        peers["asari"] = asari_label
    except Exception as exc:
        peers["asari"] = f"not available ({type(exc).__name__}: {str(exc)[:60]})"
    return peers


def main() -> int:
    texts = json.load(sys.stdin)
    out: dict[str, list[str] | str] = {}
    for name, fn in peer_predictors().items():
        out[name] = fn if isinstance(fn, str) else [fn(t) for t in texts]
    json.dump(out, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
