"""What the pipeline stages ask of an LLM, without knowing how it is reached.

``summaries``, ``discovery`` and ``labelling`` describe a task as data (a task name, a JSON payload, the JSON
schema the answer must follow, and a ``check`` for what a schema cannot say, such as "cite only quote ids that
exist"). ``service.llm.LLMAssistant`` turns that into a prompt and an HTTP call; tests pass a scripted one.
An assistant answers ``None`` whenever it cannot give a valid answer (no server, timeout, budget spent,
invalid JSON after one repair round): every caller then falls back to an extractive result, so koe works the
same without an LLM, only plainer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["TASKS", "Assistant", "Check"]

Check = Callable[[dict[str, Any]], list[str]]  # problems with an answer (empty: acceptable)

# task name -> what the payload carries (prompts live in service/llm/prompts.py)
TASKS = {
    "summarize": "theme, group, segment, n, quotes [{id, text}]",
    "name_cluster": "keywords, sentences, size",
    "propose_labels": "theme {name, description, examples}, items [{id, text}]",
}


class Assistant(Protocol):
    @property
    def model(self) -> str:
        """The model's name as results record it (``llm:<model>``)."""
        ...

    def ask(
        self, task: str, payload: dict[str, Any], schema: dict[str, Any], check: Check | None = None
    ) -> dict[str, Any] | None:
        """A schema-valid answer that passes ``check``, or None (the caller falls back)."""
        ...
