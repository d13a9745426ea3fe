"""The LLM client's exceptions. None of them reaches a user: the assistant logs them and falls back.

LLMError                  anything that kept the client from a valid answer
├── LLMUnavailable        connection refused, timeouts, 429 / 5xx after the retries, other HTTP errors
├── LLMBudgetExceeded     the job's token budget cannot cover the request: nothing was sent
└── LLMInvalidAnswer      not JSON, not the schema, or failing the caller's check, even after one repair
"""

from __future__ import annotations

__all__ = ["LLMBudgetExceeded", "LLMError", "LLMInvalidAnswer", "LLMUnavailable"]


class LLMError(Exception):
    """The LLM gave no usable answer."""


class LLMUnavailable(LLMError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LLMBudgetExceeded(LLMError):
    pass


class LLMInvalidAnswer(LLMError):
    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems
