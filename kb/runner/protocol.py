"""Length-prefixed JSON messages over pipes, shared by the pool and its workers.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. JSON (not pickle)
because the pool must never unpickle data from a process that runs untrusted code.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

MAX_FRAME = 64 * 1024 * 1024  # a larger length means a corrupt stream
_HEADER = struct.Struct(">I")


class ChannelClosed(EOFError):
    """The other end closed the pipe (the process died or exited)."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return _HEADER.pack(len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def send(fd: int, message: dict[str, Any]) -> None:
    write_all(fd, encode(message))


class Reader:
    """Reads frames from a file descriptor, optionally with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = bytearray()

    def _frame(self) -> dict[str, Any] | None:
        if len(self._buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buf)
        if size > MAX_FRAME:
            raise ValueError(f"corrupt frame of {size} bytes")
        if len(self._buf) < _HEADER.size + size:
            return None
        body = bytes(self._buf[_HEADER.size : _HEADER.size + size])
        del self._buf[: _HEADER.size + size]
        return json.loads(body)

    def recv(self, deadline: float | None = None) -> dict[str, Any]:
        """The next message; TimeoutError once `deadline` (time.monotonic) passes, ChannelClosed on EOF."""
        while True:
            message = self._frame()
            if message is not None:
                return message
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no message before the deadline")
                # poll, not select: select fails on descriptors above 1023.
                poller = select.poll()
                poller.register(self.fd, select.POLLIN)
                if not poller.poll(max(1, int(remaining * 1000))):
                    continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError as exc:  # the pipe was closed under us (the pool is shutting down)
                raise ChannelClosed(str(exc)) from None
            if not chunk:
                raise ChannelClosed("the other end closed the channel")
            self._buf += chunk
