"""A lean HTTP/1.1 keep-alive client for the benchmarks' load generators.

The load generator shares the machine's cores with the servers it measures, so its own CPU per request
is taken from them. ``http.client`` costs about 125 µs of CPU a request (building headers line by line,
``email.parser`` for the response's); this client sends a request head built once and parses only the
status line and the headers it needs: about 36 µs (2-core EPYC, one thread, a trivial granian app).
It speaks just enough HTTP/1.1 for the benchmarks: POST with a JSON body, responses framed by
``Content-Length`` or chunked, ``Connection: close`` honoured, a dropped connection reopened on the
next call.
"""

from __future__ import annotations

import socket

_RECV = 65536


class LeanHttpClient:
    """POST JSON bodies to one path over one persistent connection (one client per thread)."""

    def __init__(self, port: int, path: str, token: str | None = None, *, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
        if token:
            lines.append(f"Authorization: Token {token}")
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._sock: socket.socket | None = None
        self._buffer = b""

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buffer = None, b""

    def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one request; return (status, body). Raises OSError or ValueError (and closes) on failure."""
        try:
            return self._exchange(body)
        except (OSError, ValueError):
            self.close()
            raise

    def _exchange(self, body: bytes) -> tuple[int, bytes]:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=120)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.sendall(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
        buffer = self._buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer += self._recv()
        lines, buffer = buffer[:end].decode("latin-1").split("\r\n"), buffer[end + 4 :]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP/1.x status line: {lines[0]!r}")
        status = int(parts[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            length = int(fields["content-length"])
            while len(buffer) < length:
                buffer += self._recv()
            content, buffer = buffer[:length], buffer[length:]
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            content, buffer = self._chunked(buffer)
        else:
            raise ValueError("a response framed by neither Content-Length nor chunked encoding")
        self._buffer = buffer
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, content

    def _chunked(self, buffer: bytes) -> tuple[bytes, bytes]:
        chunks = []
        while True:
            while (eol := buffer.find(b"\r\n")) < 0:
                buffer += self._recv()
            size = int(buffer[:eol].split(b";", 1)[0], 16)
            buffer = buffer[eol + 2 :]
            while len(buffer) < size + 2:
                buffer += self._recv()
            chunks.append(buffer[:size])
            buffer = buffer[size + 2 :]
            if size == 0:  # no trailers expected: the last chunk's CRLF ends the body
                return b"".join(chunks), buffer

    def _recv(self) -> bytes:
        assert self._sock is not None
        data = self._sock.recv(_RECV)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data
