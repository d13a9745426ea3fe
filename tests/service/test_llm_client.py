"""The LLM client against a scripted OpenAI-compatible server on loopback (real HTTP).

Slow answers (timeouts), 429 with Retry-After, 5xx with backoff, invalid JSON then one repair, answers citing
unknown quote ids, the response cache, the token budget, the concurrency limit and PII masking.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.records import AnalyzedRow, TextResult, ThemeHit
from pipelines.summaries import build_summaries, citation_problems
from service.config import Settings
from service.llm import (
    LLMAssistant,
    LLMBudgetExceeded,
    LLMClient,
    LLMConfig,
    LLMInvalidAnswer,
    LLMUnavailable,
    TokenBudget,
    assistant_from_settings,
)
from service.llm.cache import request_key
from service.llm.client import parse_json
from tests.service.llm_server import Step, answer, scripted_server

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["name", "n"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "テーマに名前を付けてください"}]


def _client(base_url: str, tmp_path: Path | None = None, **overrides: Any) -> tuple[LLMClient, list[float]]:
    """A client whose waits are recorded instead of slept (the HTTP is real; only backoff is not)."""
    slept: list[float] = []
    config = LLMConfig(
        base_url=base_url,
        model="scripted",
        timeout=overrides.pop("timeout", 5.0),
        backoff=overrides.pop("backoff", 0.5),
        cache_dir=tmp_path / "llm" if tmp_path else None,
        **overrides,
    )
    return LLMClient(config, sleep=slept.append), slept


def test_a_valid_answer_is_parsed_and_validated() -> None:
    with scripted_server([answer({"name": "解約手続き", "n": 3}, usage=120)]) as server:
        client, _ = _client(server.base_url, api_key="sk-test")
        with client:
            got = client.complete_json(ASK, SCHEMA, name="name_cluster")
    assert (
        got.data == {"name": "解約手続き", "n": 3}
        and not got.cached
        and not got.repaired
        and got.tokens == 120
    )
    seen = server.requests[0]
    assert seen.path == "/v1/chat/completions" and seen.headers["authorization"] == "Bearer sk-test"
    assert seen.body["model"] == "scripted" and seen.body["temperature"] == 0.0
    assert seen.body["response_format"]["type"] == "json_schema"
    assert seen.body["response_format"]["json_schema"]["schema"] == SCHEMA


def test_pii_is_masked_before_anything_leaves_the_process() -> None:
    text = (
        "山田太郎様（taro@example.jp、090-1234-5678）から。東京都渋谷区神南1-2-3 に住む田中さんのカード "
        "4111 1111 1111 1111、マイナンバー 1234-5678-9018、口座番号 1234567"
    )
    with scripted_server([Step(content="not json"), answer({"name": "x", "n": 1})]) as server:
        client, _ = _client(server.base_url)
        with client:
            client.complete_json([{"role": "user", "content": text}], SCHEMA)
    sent = server.sent_text()  # the first request and the repair round
    for secret in ("山田", "太郎", "田中", "taro@", "090-1234", "神南", "4111", "1234-5678-9018", "1234567"):
        assert secret not in sent
    for tag in (
        "[氏名]様",
        "[メール]",
        "[電話番号]",
        "[住所]",
        "[氏名]さん",
        "[カード番号]",
        "[マイナンバー]",
        "[番号]",
    ):
        assert tag in sent


def test_a_slow_answer_times_out_and_is_retried_then_given_up() -> None:
    with scripted_server([Step(content='{"name": "x", "n": 1}', delay=1.5)]) as server:
        client, slept = _client(server.base_url, timeout=0.3, max_retries=1, backoff=0.25)
        start = time.perf_counter()
        with client, pytest.raises(LLMUnavailable, match=r"no answer within 0\.3 s"):
            client.complete_json(ASK, SCHEMA)
        elapsed = time.perf_counter() - start
    assert len(server.requests) == 2 and slept == [0.25]  # one retry after the backoff
    assert elapsed < 1.5  # two timeouts of 0.3 s, not the server's 1.5 s


def test_429_waits_as_long_as_retry_after_says() -> None:
    script = [
        Step(status=429, raw='{"error": "rate limited"}', headers={"Retry-After": "2"}),
        answer({"name": "料金", "n": 2}),
    ]
    with scripted_server(script) as server:
        client, slept = _client(server.base_url)
        with client:
            got = client.complete_json(ASK, SCHEMA)
    assert got.data["name"] == "料金" and slept == [2.0] and len(server.requests) == 2
    assert client.stats.to_dict()["retries"] == 1


def test_retry_after_longer_than_allowed_is_not_waited_for() -> None:
    script = [Step(status=429, raw="{}", headers={"Retry-After": "600"}), answer({"name": "x", "n": 1})]
    with scripted_server(script) as server:
        client, slept = _client(server.base_url, max_retry_wait=30)
        with client, pytest.raises(LLMUnavailable, match="wait 600 s"):
            client.complete_json(ASK, SCHEMA)
    assert slept == [] and len(server.requests) == 1


def test_5xx_backs_off_exponentially_then_gives_up() -> None:
    with scripted_server([Step(status=503, raw="{}")]) as server:
        client, slept = _client(server.base_url, max_retries=3, backoff=0.5)
        with client, pytest.raises(LLMUnavailable, match="HTTP 503") as err:
            client.complete_json(ASK, SCHEMA)
    assert slept == [0.5, 1.0, 2.0] and len(server.requests) == 4 and err.value.status == 503


def test_a_connection_refused_is_unavailable() -> None:
    with scripted_server([answer({})]) as server:
        url = server.base_url
    client, _ = _client(url, max_retries=1)  # the server is gone: nothing listens on the port
    with client, pytest.raises(LLMUnavailable, match="cannot reach"):
        client.complete_json(ASK, SCHEMA)


def test_invalid_json_gets_one_repair_round() -> None:
    script = [Step(content="はい、こちらです: {name: 解約}"), answer({"name": "解約", "n": 4})]
    with scripted_server(script) as server:
        client, _ = _client(server.base_url)
        with client:
            got = client.complete_json(ASK, SCHEMA)
    assert got.data == {"name": "解約", "n": 4} and got.repaired
    repair = server.requests[1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": "はい、こちらです: {name: 解約}"}
    assert "JSON" in repair[-1]["content"] and "受け付けられませんでした" in repair[-1]["content"]


def test_an_answer_off_the_schema_twice_is_rejected() -> None:
    with scripted_server([answer({"name": "x"}), answer({"name": "x", "n": "three"})]) as server:
        client, _ = _client(server.base_url)
        with client, pytest.raises(LLMInvalidAnswer) as err:
            client.complete_json(ASK, SCHEMA)
    assert len(server.requests) == 2
    assert "'n' is a required property" in server.requests[1].body["messages"][-1]["content"]
    assert any("n: 'three' is not of type 'integer'" in p for p in err.value.problems)


def test_fenced_and_chatty_json_is_read() -> None:
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json('答えは {"a": {"b": 2}} です') == {"a": {"b": 2}}
    # a raw newline inside a string, as llama.cpp grammars allow
    assert parse_json('{"a": "two\nlines"}') == {"a": "two\nlines"}
    with pytest.raises(ValueError):
        parse_json("[1, 2]")


def test_a_server_refusing_response_format_is_asked_without_it() -> None:
    script = [
        Step(status=400, raw='{"error": "response_format not supported"}'),
        answer({"name": "x", "n": 1}),
    ]
    with scripted_server(script) as server:
        client, _ = _client(server.base_url)
        with client:
            client.complete_json(ASK, SCHEMA)
            client.complete_json([{"role": "user", "content": "もう一度"}], SCHEMA)
    assert "response_format" in server.requests[0].body
    assert all("response_format" not in r.body for r in server.requests[1:])


def test_llama_cpp_gets_the_schema_as_json_object() -> None:
    with scripted_server([answer({"name": "x", "n": 1})]) as server:
        client, _ = _client(server.base_url, response_format="json_object")
        with client:
            client.complete_json(ASK, SCHEMA)
    assert server.requests[0].body["response_format"] == {"type": "json_object", "schema": SCHEMA}


def test_azure_openai_gets_api_key_header_and_api_version() -> None:
    with scripted_server([answer({"name": "x", "n": 1})]) as server:
        base = server.base_url.replace("/v1", "/openai/deployments/gpt")
        client, _ = _client(base, api_key="azure-key", azure_api_version="2024-10-21")
        with client:
            client.complete_json(ASK, SCHEMA)
    seen = server.requests[0]
    assert seen.path == "/openai/deployments/gpt/chat/completions?api-version=2024-10-21"
    assert seen.headers["api-key"] == "azure-key" and "authorization" not in seen.headers


def test_the_same_request_is_answered_from_the_cache(tmp_path: Path) -> None:
    with scripted_server([answer({"name": "配送", "n": 1})]) as server:
        client, _ = _client(server.base_url, tmp_path)
        with client:
            first = client.complete_json(ASK, SCHEMA)
            second = client.complete_json(ASK, SCHEMA)
            other = client.complete_json([{"role": "user", "content": "別の質問"}], SCHEMA)
        # a new client (another process, another job) reads the same files
        again, _ = _client(server.base_url, tmp_path)
        with again:
            third = again.complete_json(ASK, SCHEMA)
    assert len(server.requests) == 2  # ASK once, the other question once
    assert not first.cached and second.cached and third.cached and not other.cached
    assert second.data == first.data == third.data
    files = sorted(p.stem for p in (tmp_path / "llm").rglob("*.json"))
    assert len(files) == 2 and all(len(f) == 64 for f in files)
    assert request_key({"b": 1, "a": "é"}) == request_key({"a": "é", "b": 1})


def test_invalid_answers_are_never_cached(tmp_path: Path) -> None:
    with scripted_server([Step(content="x"), Step(content="y"), answer({"name": "z", "n": 1})]) as server:
        client, _ = _client(server.base_url, tmp_path)
        with client:
            with pytest.raises(LLMInvalidAnswer):
                client.complete_json(ASK, SCHEMA)
            assert client.complete_json(ASK, SCHEMA).data["name"] == "z"
    assert len(server.requests) == 3


def test_a_spent_budget_sends_nothing() -> None:
    budget = TokenBudget(1000)
    with scripted_server([answer({"name": "x", "n": 1}, usage=700)]) as server:
        client, _ = _client(server.base_url, max_tokens=200)
        with client:
            client.complete_json(ASK, SCHEMA, budget=budget)  # reserves ~220, settles at 700
            assert budget.used == 700 and budget.remaining == 300
            with pytest.raises(LLMBudgetExceeded, match="budget"):
                client.complete_json([{"role": "user", "content": "長い質問" * 30}], SCHEMA, budget=budget)
    assert len(server.requests) == 1 and budget.used == 700


def test_at_most_concurrency_requests_run_at_once() -> None:
    with scripted_server([answer({"name": "x", "n": 1}, delay=0.3)]) as server:
        client, _ = _client(server.base_url, concurrency=2)
        with client:
            threads = [
                threading.Thread(
                    target=client.complete_json, args=([{"role": "user", "content": f"質問{i}"}], SCHEMA)
                )
                for i in range(6)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert len(server.requests) == 6 and server.max_in_flight == 2


# -- the assistant: failures become None, and the stages fall back ------------------------------------


def _rows() -> list[AnalyzedRow]:
    texts = [
        "電話が全然つながらず三十分以上も待たされました。",
        "メールの返信が一週間も来なくて困りました。",
        "返金処理がいつまで経っても終わらないままです。",
        "問い合わせの回答が遅く、結局自分で調べて解決しました。",
        "チャットで質問しても担当者につながるまで時間がかかりすぎる。",
    ]
    return [
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


TAXONOMY = [{"id": "slow_response", "name": "対応が遅い"}]


def _summaries(assistant: LLMAssistant | None) -> list[dict[str, Any]]:
    return build_summaries(
        _rows(),
        TAXONOMY,
        ["detractors"] * 5,
        lemmatize=lambda t: t.split("、"),
        assistant=assistant,
        group="all",
    )


def test_a_grounded_summary_is_kept() -> None:
    grounded = {
        "sentences": [
            {"text": "電話やメールの返信が遅いという声が多い。", "quote_ids": ["q1", "q5"]},
            {"text": "返金の処理の遅れにも不満がある。", "quote_ids": ["q2"]},
        ]
    }
    with scripted_server([answer(grounded)]) as server:
        client, _ = _client(server.base_url)
        [item] = _summaries(LLMAssistant(client))
    assert item["method"] == "llm" and item["model"] == "scripted" and item["fallback"] is None
    assert [s["quote_ids"] for s in item["sentences"]] == [["q1", "q5"], ["q2"]]
    ids = {q["id"] for q in item["quotes"]}
    assert all(set(s["quote_ids"]) <= ids for s in item["sentences"])
    sent = server.sent_text()
    assert "[q1]" in sent and "対応が遅い" in sent


def test_a_summary_citing_unknown_quotes_is_rejected_and_falls_back() -> None:
    bad = {"sentences": [{"text": "返信が遅い。", "quote_ids": ["q1", "q99"]}]}
    uncited = {"sentences": [{"text": "返信が遅い。", "quote_ids": []}]}
    with scripted_server([answer(bad), answer(uncited)]) as server:
        client, _ = _client(server.base_url)
        assistant = LLMAssistant(client)
        [item] = _summaries(assistant)
    assert len(server.requests) == 2  # the answer, and one repair round
    repair = server.requests[1].body["messages"][-1]["content"]
    assert "q99" in repair
    assert item["method"] == "extractive" and item["fallback"] == "llm_failed"
    assert all(len(s["quote_ids"]) == 1 for s in item["sentences"])  # extractive: each quote cites itself
    assert assistant.report()["outcomes"] == {"invalid": 1}


def test_a_summary_that_does_not_say_what_its_quotes_say_is_rejected() -> None:
    # the prompt's example, copied
    copied = {"sentences": [{"text": "要約の文。", "quote_ids": ["q1", "q3"]}]}
    with scripted_server([answer(copied)]) as server:
        client, _ = _client(server.base_url)
        [item] = _summaries(LLMAssistant(client))
    assert (
        len(server.requests) == 2 and "shares no word" in server.requests[1].body["messages"][-1]["content"]
    )
    assert item["method"] == "extractive"


def test_citation_problems_by_hand() -> None:
    ids = ["q1", "q2"]
    assert citation_problems({"sentences": [{"text": "a", "quote_ids": ["q1"]}]}, ids) == []
    assert citation_problems({"sentences": []}, ids) == ["the summary has no sentences"]
    assert citation_problems({"sentences": [{"text": "a", "quote_ids": []}]}, ids) == [
        "sentence 1 cites no quote id"
    ]
    [problem] = citation_problems({"sentences": [{"text": "a", "quote_ids": ["q1", "q7"]}]}, ids)
    assert "q7" in problem and "q1, q2" in problem


def test_unavailable_server_and_spent_budget_fall_back_to_extractive() -> None:
    with scripted_server([Step(status=503, raw="{}")]) as server:
        client, _ = _client(server.base_url, max_retries=0)
        [down] = _summaries(LLMAssistant(client))
    client, _ = _client(server.base_url)
    broke = LLMAssistant(client, TokenBudget(10))
    [spent] = _summaries(broke)
    assert down["method"] == spent["method"] == "extractive" and down["fallback"] == "llm_failed"
    assert broke.report()["outcomes"] == {"budget_exceeded": 1} and broke.report()["tokens_used"] == 0
    [plain] = _summaries(None)
    assert plain["fallback"] == "no_llm" and plain["sentences"] == down["sentences"]


def test_no_base_url_means_no_assistant(tmp_path: Path) -> None:
    assert assistant_from_settings(Settings(data_dir=tmp_path)) is None
    assistant = assistant_from_settings(
        Settings(data_dir=tmp_path, llm_base_url="http://127.0.0.1:9/v1", llm_job_token_budget=500)
    )
    assert assistant is not None and assistant.budget.limit == 500
    assistant.close()


def test_the_cache_file_holds_only_the_validated_answer(tmp_path: Path) -> None:
    with scripted_server([answer({"name": "a", "n": 1})]) as server:
        client, _ = _client(server.base_url, tmp_path)
        with client:
            client.complete_json(ASK, SCHEMA)
    [path] = list((tmp_path / "llm").rglob("*.json"))
    entry = json.loads(path.read_text(encoding="utf-8"))
    assert entry["data"] == {"name": "a", "n": 1} and entry["model"] == "scripted"
