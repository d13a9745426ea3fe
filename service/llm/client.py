"""An OpenAI-compatible chat-completions client for structured (JSON) answers.

Works with anything that speaks ``POST {base}/chat/completions``: OpenAI, Azure OpenAI (``api-key`` header and
``api-version``), vLLM, Ollama, llama.cpp's server and llama-cpp-python's. What it adds on top of one call:

- every message is PII-masked (``pipelines.pii``, person names included) before it leaves the process;
- timeouts; retries on timeouts, connection errors, 429 and 5xx with exponential backoff, honouring
  ``Retry-After`` (a server asking for longer than ``max_retry_wait`` is not waited for);
- at most ``concurrency`` requests in flight per client;
- a token budget per job (``TokenBudget``): a request the budget cannot cover is not sent;
- a response cache keyed by the SHA-256 of the request (``cache.ResponseCache``);
- the answer is parsed as JSON, validated against the JSON schema (``jsonschema``) and the caller's check;
  an invalid answer gets one repair round (the problems are sent back), then ``LLMInvalidAnswer``.

``response_format`` is ``json_schema`` (OpenAI, Azure, vLLM, Ollama), ``json_object`` (with the schema
under ``schema``: llama.cpp / llama-cpp-python) or ``none`` (the prompt alone asks for JSON). A server that
answers 400/422 to a response format is asked again without one, and not asked with it again.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from pipelines.assistant import Check
from pipelines.pii import mask_pii
from service.llm.cache import ResponseCache, request_key
from service.llm.errors import LLMBudgetExceeded, LLMInvalidAnswer, LLMUnavailable
from service.llm.prompts import repair_message

if TYPE_CHECKING:
    from service.config import Settings

__all__ = ["JsonAnswer", "LLMClient", "LLMConfig", "TokenBudget", "estimate_tokens", "parse_json"]

log = logging.getLogger("koe.llm")
Message = dict[str, str]
ResponseFormat = Literal["json_schema", "json_object", "none"]
RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    azure_api_version: str | None = None
    timeout: float = 60.0
    connect_timeout: float = 5.0
    max_retries: int = 2
    backoff: float = 1.0
    max_retry_wait: float = 30.0
    concurrency: int = 4
    max_tokens: int = 800
    temperature: float = 0.0
    response_format: ResponseFormat = "json_schema"
    cache_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig | None:
        """The configuration ``KOE_LLM_*`` describes, or None when no LLM is configured."""
        if not settings.llm_base_url:
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(
            base_url=settings.llm_base_url,
            model=settings.llm_model or "default",
            api_key=key or None,
            azure_api_version=settings.llm_azure_api_version,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            backoff=settings.llm_backoff_seconds,
            max_retry_wait=settings.llm_max_retry_wait,
            concurrency=settings.llm_concurrency,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            response_format=settings.llm_response_format,
            cache_dir=settings.cache_dir / "llm" if settings.llm_cache else None,
        )

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


class TokenBudget:
    """Tokens one job may spend. A request reserves its worst case (prompt estimate + ``max_tokens``)
    before it is sent and settles at what the server reports (``usage.total_tokens``) afterwards;
    a request that cannot be reserved raises ``LLMBudgetExceeded`` and is not sent. ``None``: no limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self._reserved = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        with self._lock:
            return None if self.limit is None else max(self.limit - self.used - self._reserved, 0)

    def reserve(self, tokens: int) -> int:
        with self._lock:
            if self.limit is not None and self.used + self._reserved + tokens > self.limit:
                raise LLMBudgetExceeded(
                    f"the job's LLM token budget ({self.limit:,}) is spent: {self.used:,} used, "
                    f"this request needs up to {tokens:,} (KOE_LLM_JOB_TOKEN_BUDGET)"
                )
            self._reserved += tokens
            return tokens

    def settle(self, reserved: int, used: int) -> None:
        with self._lock:
            self._reserved -= reserved
            self.used += used


@dataclass
class JsonAnswer:
    data: dict[str, Any]
    cached: bool = False
    repaired: bool = False
    tokens: int = 0


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    repairs: int = 0
    tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def to_dict(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "cache_hits": self.cache_hits,
                "repairs": self.repairs,
                "tokens": self.tokens,
            }


def estimate_tokens(messages: Sequence[Message]) -> int:
    """A generous token estimate: one per non-ASCII character (Japanese runs about 1–1.5 characters per
    token in the common tokenizers), one per four ASCII characters, plus a few per message."""
    total = 0
    for m in messages:
        text = m.get("content", "")
        ascii_chars = sum(1 for ch in text if ord(ch) < 128)
        total += (len(text) - ascii_chars) + ascii_chars // 4 + 8
    return total


def parse_json(content: str) -> dict[str, Any]:
    """The JSON object in an answer: bare, in a ``` fence, or the outermost {...} of a chatty answer."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(
            text, strict=False
        )  # strict=False: a raw newline inside a string (llama.cpp grammars)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise
        value = json.loads(text[start : end + 1], strict=False)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _schema_problems(data: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator

    problems = []
    for err in sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.path) or "(root)"
        problems.append(f"{where}: {err.message}")
    return problems[:8]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class LLMClient:
    def __init__(
        self,
        config: LLMConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.stats = ClientStats()
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self._format_refused = False
        self.cache = ResponseCache(config.cache_dir) if config.cache_dir else None
        headers = {"content-type": "application/json"}
        if config.api_key:
            if config.azure_api_version:
                headers["api-key"] = config.api_key
            else:
                headers["authorization"] = f"Bearer {config.api_key}"
        params = {"api-version": config.azure_api_version} if config.azure_api_version else None
        self._http = httpx.Client(
            timeout=httpx.Timeout(config.timeout, connect=min(config.connect_timeout, config.timeout)),
            headers=headers,
            params=params,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- one HTTP request, with retries ------------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> httpx.Response:
        """The first answer that is not a timeout, a connection error, 429 or 5xx (after retries)."""
        cfg = self.config
        last: LLMUnavailable | None = None
        for attempt in range(cfg.max_retries + 1):
            wait: float | None = None
            with self._slots:
                self.stats.add(requests=1, retries=int(attempt > 0))
                try:
                    response = self._http.post(cfg.url, json=body)
                except httpx.TimeoutException:
                    last = LLMUnavailable(
                        f"{cfg.url} gave no answer within {cfg.timeout:g} s (KOE_LLM_TIMEOUT)"
                    )
                except httpx.TransportError as exc:
                    last = LLMUnavailable(f"cannot reach {cfg.url}: {exc}")
                else:
                    if response.status_code not in RETRYABLE:
                        return response
                    last = LLMUnavailable(
                        f"{cfg.url} answered HTTP {response.status_code}", status=response.status_code
                    )
                    wait = _retry_after(response)
            if attempt == cfg.max_retries:
                break
            if wait is not None and wait > cfg.max_retry_wait:
                raise LLMUnavailable(
                    f"{cfg.url} asks to wait {wait:g} s (Retry-After), longer than {cfg.max_retry_wait:g} s "
                    "(KOE_LLM_MAX_RETRY_WAIT)",
                    status=last.status,
                )
            delay = wait if wait is not None else cfg.backoff * 2**attempt
            log.info(
                "llm retry", extra={"attempt": attempt + 1, "wait_s": round(delay, 2), "error": str(last)}
            )
            self._sleep(delay)
        assert last is not None  # the loop ran at least once and did not return
        raise last

    def _response_format(self, schema: dict[str, Any], name: str) -> dict[str, Any] | None:
        mode = "none" if self._format_refused else self.config.response_format
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        if mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return None

    def chat(
        self,
        messages: Sequence[Message],
        *,
        schema: dict[str, Any] | None = None,
        name: str = "answer",
        max_tokens: int | None = None,
        budget: TokenBudget | None = None,
    ) -> str:
        """The assistant message's content for ``messages``, PII-masked here (budget reserved and settled)."""
        sent = [{"role": m["role"], "content": mask_pii(m["content"], names=True)} for m in messages]
        return self._chat(sent, schema, name, max_tokens, budget)[0]

    def _chat(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any] | None,
        name: str,
        max_tokens: int | None,
        budget: TokenBudget | None,
    ) -> tuple[str, int]:
        max_tokens = max_tokens or self.config.max_tokens
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": list(messages),
            "temperature": self.config.temperature,
            "max_tokens": max_tokens,
        }
        response_format = self._response_format(schema, name) if schema is not None else None
        if response_format:
            body["response_format"] = response_format
        estimate = estimate_tokens(messages) + max_tokens
        reserved = budget.reserve(estimate) if budget else 0
        used = 0
        try:
            response = self._post(body)
            if response.status_code in (400, 422) and response_format:
                log.warning(
                    "llm server refused the response format; asking without it from now on",
                    extra={"status": response.status_code, "format": response_format["type"]},
                )
                self._format_refused = True
                body.pop("response_format")
                response = self._post(body)
            if response.status_code != 200:
                log.debug(
                    "llm error body", extra={"status": response.status_code, "body": response.text[:500]}
                )
                raise LLMUnavailable(
                    f"{self.config.url} answered HTTP {response.status_code}", status=response.status_code
                )
            try:
                payload = response.json()
                content = payload["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise LLMUnavailable(f"{self.config.url} did not answer a chat completion: {exc!r}") from exc
            usage = payload.get("usage") or {}
            used = int(usage.get("total_tokens") or 0) or estimate_tokens([*messages, {"content": content}])
            self.stats.add(tokens=used)
            return str(content), used
        finally:
            if budget:
                budget.settle(reserved, used)

    # -- structured answers ------------------------------------------------------------------------
    @staticmethod
    def _problems(
        content_or_data: str | dict[str, Any], schema: dict[str, Any], check: Check | None
    ) -> tuple[dict[str, Any] | None, list[str]]:
        if isinstance(content_or_data, dict):
            data = content_or_data
        else:
            try:
                data = parse_json(content_or_data)
            except ValueError as exc:
                return None, [f"the answer is not a JSON object ({exc})"]
        problems = _schema_problems(data, schema)
        if not problems and check is not None:
            problems = check(data)
        return data, problems

    def complete_json(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any],
        *,
        name: str = "answer",
        check: Check | None = None,
        budget: TokenBudget | None = None,
        max_tokens: int | None = None,
    ) -> JsonAnswer:
        """A JSON answer valid for ``schema`` and ``check``: from the cache, the first answer, or one repair."""
        sent = [{"role": m["role"], "content": mask_pii(m["content"], names=True)} for m in messages]
        key = request_key(
            {
                "model": self.config.model,
                "messages": sent,
                "schema": schema,
                "name": name,
                "temperature": self.config.temperature,
                "max_tokens": max_tokens or self.config.max_tokens,
            }
        )
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None and not self._problems(hit, schema, check)[1]:
            self.stats.add(cache_hits=1)
            return JsonAnswer(hit, cached=True)
        content, tokens = self._chat(sent, schema, name, max_tokens, budget)
        data, problems = self._problems(content, schema, check)
        repaired = False
        if problems:
            self.stats.add(repairs=1)
            # problems can quote the answer (and so comment text): only their number above DEBUG
            log.info("llm answer invalid; one repair round", extra={"problems": len(problems)})
            log.debug("llm answer problems", extra={"problems": problems})
            repair = [
                *sent,
                {"role": "assistant", "content": mask_pii(content[:6000], names=True)},
                {"role": "user", "content": mask_pii(repair_message(problems), names=True)},
            ]
            content, more = self._chat(repair, schema, name, max_tokens, budget)
            tokens += more
            data, problems = self._problems(content, schema, check)
            repaired = True
        if problems or data is None:
            raise LLMInvalidAnswer("the answer stayed invalid after one repair round", problems=problems)
        if self.cache is not None:
            self.cache.put(key, data, model=self.config.model)
        return JsonAnswer(data, repaired=repaired, tokens=tokens)
