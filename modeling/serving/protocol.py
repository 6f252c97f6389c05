"""The model server's wire format: length-prefixed JSON messages over a stream socket.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Connections are
persistent: a web worker keeps one open and sends request after request. Frames above ``MAX_FRAME``
are refused before anything is read into memory (64 texts x 20,000 characters fit with room).
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024
# Made once: json.dumps with arguments builds a new encoder on every call (both ends, every message).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class ProtocolError(ConnectionError):
    """The peer sent something that is not a frame of this protocol, or hung up mid-frame."""


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one message as a frame."""
    body = _ENCODER.encode(message).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message of {len(body)} bytes exceeds the {MAX_FRAME}-byte frame limit")
    sock.sendall(HEADER.pack(len(body)) + body)


def recv_message(sock: socket.socket) -> dict[str, Any] | None:
    """Return the next message, or None when the peer closed the connection between frames."""
    header = _recv_exactly(sock, HEADER.size, allow_eof=True)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
    body = _recv_exactly(sock, length, allow_eof=False)
    assert body is not None
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"frame is not UTF-8 JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


def _recv_exactly(sock: socket.socket, size: int, *, allow_eof: bool) -> bytes | None:
    chunks, received = [], 0
    while received < size:
        chunk = sock.recv(min(size - received, 1 << 20))
        if not chunk:
            if allow_eof and received == 0:
                return None
            raise ProtocolError(f"connection closed after {received} of {size} bytes")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def parse_address(address: str) -> tuple[int, Any]:
    """Return (socket family, address) for ``unix:/path``, a filesystem path, or ``host:port``."""
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[len("unix:") :]
    if address.startswith("/") or address.startswith("."):
        return socket.AF_UNIX, address
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"model server address {address!r} is neither a socket path nor host:port")
    return socket.AF_INET, (host or "127.0.0.1", int(port))
