"""LLM assistance: an OpenAI-compatible client, prompts, and the assistant the pipeline stages use.

``assistant_from_settings(settings)`` is None when ``KOE_LLM_BASE_URL`` is unset: every stage then gives
its extractive result (docs/llm.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.llm.assistant import LLMAssistant
from service.llm.client import LLMClient, LLMConfig, TokenBudget
from service.llm.errors import LLMBudgetExceeded, LLMError, LLMInvalidAnswer, LLMUnavailable

if TYPE_CHECKING:
    from service.config import Settings

__all__ = [
    "LLMAssistant",
    "LLMBudgetExceeded",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "LLMInvalidAnswer",
    "LLMUnavailable",
    "TokenBudget",
    "assistant_from_settings",
]


def assistant_from_settings(settings: Settings, *, budget: int | None = None) -> LLMAssistant | None:
    """A new assistant (own client, own token budget: one per job) or None without ``KOE_LLM_BASE_URL``."""
    config = LLMConfig.from_settings(settings)
    if config is None:
        return None
    limit = settings.llm_job_token_budget if budget is None else budget
    return LLMAssistant(LLMClient(config), TokenBudget(limit or None))
