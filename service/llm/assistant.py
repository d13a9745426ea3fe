"""``LLMAssistant``: the pipeline's ``Assistant`` over an ``LLMClient``, with one token budget per job.

A failure of any kind (``LLMError``) is logged (never the text: the problems with an answer, which can
quote it, only at DEBUG, like every comment text in koe) and answered with None, which the stages
turn into their extractive fallback; ``report()`` says how many answers came from the LLM, the cache or
the fallback, so a summary never hides that it is extractive.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from pipelines.assistant import Check
from service.llm.client import LLMClient, TokenBudget
from service.llm.errors import LLMBudgetExceeded, LLMError, LLMInvalidAnswer
from service.llm.prompts import build_messages

__all__ = ["LLMAssistant"]

log = logging.getLogger("koe.llm")


class LLMAssistant:
    def __init__(self, client: LLMClient, budget: TokenBudget | None = None) -> None:
        self.client = client
        self.budget = budget or TokenBudget(None)
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.client.config.model

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def ask(
        self, task: str, payload: dict[str, Any], schema: dict[str, Any], check: Check | None = None
    ) -> dict[str, Any] | None:
        messages = build_messages(task, payload)
        try:
            answer = self.client.complete_json(messages, schema, name=task, check=check, budget=self.budget)
        except LLMBudgetExceeded as exc:
            self._count("budget_exceeded")
            log.warning("llm budget spent; falling back", extra={"task": task, "error": str(exc)})
            return None
        except LLMInvalidAnswer as exc:
            self._count("invalid")
            log.warning(
                "llm answer rejected; falling back", extra={"task": task, "problems": len(exc.problems)}
            )
            log.debug("llm answer problems", extra={"task": task, "problems": exc.problems})
            return None
        except LLMError as exc:
            self._count("unavailable")
            log.warning("llm unavailable; falling back", extra={"task": task, "error": str(exc)})
            return None
        self._count("cached" if answer.cached else ("repaired" if answer.repaired else "answered"))
        return answer.data

    def report(self) -> dict[str, Any]:
        """What the LLM did for this job: outcomes per call, tokens spent against the budget."""
        with self._lock:
            outcomes = dict(sorted(self.outcomes.items()))
        return {
            "model": self.model,
            "outcomes": outcomes,
            "tokens_used": self.budget.used,
            "token_budget": self.budget.limit,
        }

    def close(self) -> None:
        self.client.close()
