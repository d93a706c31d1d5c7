"""A scripted chat-completions endpoint on 127.0.0.1 for the dial and serve tests.

Every POST gets the same reply; with ``logprobs`` requested, the first token and its
top log-probabilities are the given ones. ``fail = True`` answers 400 (a final error,
not retried). Request bodies are kept in ``bodies``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedChat:
    def __init__(
        self,
        content: str,
        first_token: str,
        top: Sequence[tuple[str, float]],
    ) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = False
        first_p = dict(top)[first_token]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                if outer.fail:
                    data = b'{"error": {"message": "model crashed"}}'
                    self.send_response(400)
                else:
                    choice: dict[str, Any] = {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                    if body.get("logprobs"):
                        choice["logprobs"] = {
                            "content": [
                                {
                                    "token": first_token,
                                    "logprob": math.log(first_p),
                                    "top_logprobs": [
                                        {"token": t, "logprob": math.log(p)} for t, p in top
                                    ],
                                }
                            ]
                        }
                    data = json.dumps({"id": "x", "choices": [choice], "usage": {}}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
