"""One loopback HTTP server for the tests' scripted chat-completions endpoints.

Each test endpoint only says what to answer: ``respond(body, headers) -> Reply``. The
server binds 127.0.0.1 on a free port, answers POSTs from a thread per request, answers
GETs with 404, and ignores clients that time out or are killed mid-reply.

>>> with LoopbackServer(lambda body, headers: Reply(body=completion("<answer>B</answer>"))) as s:
...     url = s.base_url  # doctest: +SKIP
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

USAGE = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


@dataclass
class Reply:
    """What to send: ``status`` 0 sends nothing (the connection just closes);
    ``on_sent`` runs once the reply was delivered (not for a client that left)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    on_sent: Callable[[], None] | None = None


def completion(
    content: str,
    *,
    logprobs: dict[str, Any] | None = None,
    usage: dict[str, int] | None = USAGE,
    **extra: Any,
) -> bytes:
    """A chat.completion body with one choice saying ``content``."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
    }
    if logprobs is not None:
        choice["logprobs"] = logprobs
    data: dict[str, Any] = {"id": "c1", "object": "chat.completion", "choices": [choice], **extra}
    if usage is not None:
        data["usage"] = usage
    return json.dumps(data).encode()


def error(message: str) -> bytes:
    return json.dumps({"error": {"message": message}}).encode()


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 whose POSTs are answered by ``respond``."""

    def __init__(
        self,
        respond: Callable[[dict[str, Any], Message], Reply],
        *,
        keep_alive: bool = False,
        queue_size: int | None = None,
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                reply = respond(body, self.headers)
                if reply.status == 0:
                    self.close_connection = True
                    return
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                except OSError:
                    return  # the client timed out or was killed (broken pipe, reset)
                if reply.on_sent is not None:
                    reply.on_sent()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up is expected in these tests

        if queue_size is not None:
            Server.request_queue_size = queue_size
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> Self:
        self.thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
