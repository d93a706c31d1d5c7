"""A scripted chat-completions endpoint on 127.0.0.1 for the dial and serve tests.

Every POST gets the same reply; with ``logprobs`` requested, the first token and its
top log-probabilities are the given ones. ``fail = True`` answers 400 (a final error,
not retried). Request bodies are kept in ``bodies``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from email.message import Message
from typing import Any

from tests.http_stub import LoopbackServer, Reply, completion, error


class ScriptedChat(LoopbackServer):
    def __init__(
        self,
        content: str,
        first_token: str,
        top: Sequence[tuple[str, float]],
    ) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = False
        self.content = content
        self.first = {
            "token": first_token,
            "logprob": math.log(dict(top)[first_token]),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in top],
        }
        super().__init__(self._respond)
        self.url = self.base_url
        self.start()

    def _respond(self, body: dict[str, Any], headers: Message) -> Reply:
        self.bodies.append(body)
        if self.fail:
            return Reply(400, error("model crashed"))
        logprobs = {"content": [self.first]} if body.get("logprobs") else None
        return Reply(body=completion(self.content, logprobs=logprobs, usage={}))
