"""The benchmarks' lean HTTP client against real servers: framing, keep-alive, close and reconnection."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks._http import LeanHttpClient


class _Echo(BaseHTTPRequestHandler):
    """Echoes the JSON body with the request's path and auth; ``/chunked`` answers chunked, ``/close`` closes."""

    protocol_version = "HTTP/1.1"
    connections: list[int] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.connections.append(self.client_address[1])
        out = json.dumps(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
        ).encode()
        self.send_response(418 if self.path == "/teapot" else 200)
        self.send_header("Content-Type", "application/json")
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(out), 7):
                piece = out[start : start + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@contextmanager
def _server() -> Iterator[int]:
    _Echo.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_posts_over_one_kept_alive_connection():
    with _server() as port:
        client = LeanHttpClient(port, "/predict", "abc")
        answers = [client.post(json.dumps({"texts": [f"t{i}", "é"]}).encode()) for i in range(5)]
        client.close()
    assert [status for status, _ in answers] == [200] * 5
    assert json.loads(answers[3][1]) == {"path": "/predict", "auth": "Token abc", "body": {"texts": ["t3", "é"]}}
    assert len(set(_Echo.connections)) == 1  # the same client port every time: keep-alive


def test_reads_chunked_bodies_and_reports_other_statuses():
    with _server() as port:
        chunked = LeanHttpClient(port, "/chunked")
        first, second = chunked.post(b'{"a": 1}'), chunked.post(b'{"a": 2}')
        status, body = LeanHttpClient(port, "/teapot").post(b"[]")
    assert first == (200, json.dumps({"path": "/chunked", "auth": None, "body": {"a": 1}}).encode())
    assert json.loads(second[1])["body"] == {"a": 2}
    assert status == 418 and json.loads(body)["body"] == []


def test_honours_connection_close_and_reconnects():
    with _server() as port:
        client = LeanHttpClient(port, "/close")
        answers = [client.post(b"{}") for _ in range(3)]
    assert [status for status, _ in answers] == [200] * 3
    assert len(set(_Echo.connections)) == 3  # a new connection for every request


@contextmanager
def _raw_server(*replies: bytes | None) -> Iterator[int]:
    """Accept one connection per reply, read its request, send the reply (None: hang up without one)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        for reply in replies:
            conn, _ = listener.accept()
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(5)
        listener.close()


def test_a_server_that_hangs_up_raises_and_the_next_call_reconnects():
    with _raw_server(None, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as port:
        client = LeanHttpClient(port, "/")
        with pytest.raises(ConnectionError):
            client.post(b"{}")
        assert client.post(b"{}") == (200, b"ok")


def test_refuses_a_response_it_cannot_frame():
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length"
    with _raw_server(reply) as port, pytest.raises(ValueError, match="neither Content-Length nor chunked"):
        LeanHttpClient(port, "/").post(b"{}")
