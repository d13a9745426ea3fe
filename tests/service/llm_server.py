"""A scripted OpenAI-compatible chat-completions server on loopback (real HTTP, real sockets).

Each request is answered by the next ``Step`` of the script (the last step repeats): a status, a body
(an assistant message's content, or raw text), headers, and a delay before answering. Every request's JSON
body and headers are recorded, with the number of requests in flight at the time, so tests can check what
left the process, how often it was retried and how many requests ran at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ScriptedServer", "Step", "answer", "scripted_server"]


@dataclass
class Step:
    content: str | None = None  # the assistant message (a chat completion is built around it)
    status: int = 200
    raw: str | None = None  # a raw body instead of a chat completion
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: int | None = None  # usage.total_tokens to report


def answer(data: dict[str, Any], **kwargs: Any) -> Step:
    return Step(content=json.dumps(data, ensure_ascii=False), **kwargs)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    in_flight: int


class ScriptedServer:
    def __init__(self, script: list[Step], respond: Callable[[dict[str, Any]], Step] | None = None) -> None:
        self.script = list(script)
        self.respond = respond  # when given, answers every request from its body instead of the script
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                    index = len(server.requests)
                    server.requests.append(
                        Seen(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            server._in_flight,
                        )
                    )
                    step = (
                        server.respond(body)
                        if server.respond
                        else server.script[min(index, len(server.script) - 1)]
                    )
                try:
                    time.sleep(step.delay)
                    if step.raw is not None:
                        payload = step.raw.encode()
                    else:
                        completion: dict[str, Any] = {
                            "id": f"chatcmpl-{index}",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": step.content},
                                    "finish_reason": "stop",
                                }
                            ],
                        }
                        if step.usage is not None:
                            completion["usage"] = {"total_tokens": step.usage}
                        payload = json.dumps(completion, ensure_ascii=False).encode()
                    self.send_response(step.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in step.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up: that is the point of a slow step
                finally:
                    with server._lock:
                        server._in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="scripted-llm", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def sent_text(self) -> str:
        """Every message content of every request, joined (to check what left the process)."""
        return "\n".join(m["content"] for r in self.requests for m in r.body.get("messages", []))


@contextmanager
def scripted_server(
    script: list[Step], respond: Callable[[dict[str, Any]], Step] | None = None
) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script, respond)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
