"""The web workers' side of the model server: one persistent connection per thread, typed errors.

Errors map onto the API's contract: ``ServerUnavailable`` and ``ServerOverloaded`` become 503 with
``Retry-After``; ``ModelNotServed`` becomes 503 "no production model"; anything else the server
reports is a ``ModelServerError`` (a 5xx that is the server's fault, never the caller's).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from modeling.serving.protocol import ProtocolError, parse_address, recv_message, send_message


class ModelServerError(RuntimeError):
    """The model server answered with an error."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code, self.retry_after = code, retry_after


class ServerUnavailable(ModelServerError):
    """The model server cannot be reached (not started, restarting, or crashed)."""


class ServerOverloaded(ModelServerError):
    """The model server's queue is full; retry after ``retry_after`` seconds."""


class ModelNotServed(ModelServerError):
    """The model server holds no model under the requested key."""


ERRORS: dict[str, type[ModelServerError]] = {"overloaded": ServerOverloaded, "model_not_loaded": ModelNotServed}


class ModelServerClient:
    """Send requests to a model server at ``address`` (a socket path or host:port)."""

    def __init__(self, address: str, *, timeout: float = 30.0, connect_timeout: float = 2.0) -> None:
        self.address = address
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._local = threading.local()

    def predict(
        self,
        key: str,
        texts: list[str],
        meta: dict[str, Any] | None = None,
        *,
        shadow: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return ``{"version", "labels", "ids", "probs", "latency_ms"}`` for ``texts``.

        ``shadow`` (``{"key", "meta"}``) asks the server to have that model score a copy after answering.
        """
        message: dict[str, Any] = {"op": "predict", "key": key, "texts": texts, "meta": meta or {}}
        if shadow is not None:
            message["shadow"] = shadow
        return dict(self.call(message))

    def flush(self, timeout: float = 10.0) -> bool:
        """Have the server write its pending prediction-log rows; return whether it finished in time."""
        return bool(self.call({"op": "flush", "timeout": timeout}, timeout=timeout + 5.0))

    def load(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Load (or hot-swap to) the version ``spec`` describes; loading and warming may take minutes."""
        return dict(self.call({"op": "load", "spec": spec}, timeout=600.0))

    def unload(self, key: str) -> bool:
        return bool(self.call({"op": "unload", "key": key}))

    def stats(self) -> dict[str, Any]:
        return dict(self.call({"op": "stats"}))

    def models(self) -> list[dict[str, Any]]:
        return list(self.call({"op": "models"}))

    def ping(self) -> bool:
        return bool(self.call({"op": "ping"}) == "pong")

    def call(self, message: dict[str, Any], timeout: float | None = None) -> Any:
        """Send ``message`` and return the reply's ``ok`` value; reconnect once if the connection went stale."""
        reply: dict[str, Any] | None = None
        for attempt in (1, 2):
            sock = self._connection()
            try:
                sock.settimeout(timeout or self.timeout)
                send_message(sock, message)
                reply = recv_message(sock)
                if reply is None:
                    raise ProtocolError("the model server closed the connection")
                break
            except (OSError, ProtocolError) as exc:
                self.close()
                # A request that timed out may still be running: retrying it would run it twice.
                if attempt == 2 or isinstance(exc, TimeoutError):
                    raise ServerUnavailable("unavailable", f"model server at {self.address}: {exc}", 1.0) from exc
        assert reply is not None
        if "error" in reply:
            error = reply["error"]
            cls = ERRORS.get(error.get("code", ""), ModelServerError)
            raise cls(error.get("code", "error"), error.get("message", ""), error.get("retry_after"))
        return reply["ok"]

    def close(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            sock.close()
            self._local.sock = None

    def _connection(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is not None:
            return sock
        family, address = parse_address(self.address)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            raise ServerUnavailable(
                "unavailable", f"cannot reach the model server at {self.address}: {exc}", 1.0
            ) from exc
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.sock = sock
        return sock
