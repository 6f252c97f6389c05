"""The socket side: threaded Unix and TCP servers with a backlog sized for a web deployment's burst
of connections, and the helpers that read a predict message's texts and build an error reply.
"""

from __future__ import annotations

import socketserver
from typing import Any

# A web deployment opens one connection per worker thread at start-up: the default backlog of 5
# refuses a burst of them with EAGAIN.
BACKLOG = 512


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = BACKLOG


class _TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    request_queue_size = BACKLOG
    allow_reuse_address = True


def _texts(message: dict[str, Any]) -> list[str]:
    texts = message.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of strings")
    return texts


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}
