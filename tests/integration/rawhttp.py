"""One raw HTTP conversation on a socket, to see the answer's bytes and how the server closed.

:func:`tests.integration.live.raw` shuts the client's write side at once, which
hides a server that closes with request bytes unread (the kernel resets only
while the client still sends). :func:`converse` keeps it open, as a browser does.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass


@dataclass
class Reply:
    """What a client saw on one connection: the answers' bytes and how it ended."""

    data: bytes
    #: ``"eof"`` for a clean close (FIN), ``"reset"`` for a TCP RST.
    ending: str

    @property
    def statuses(self) -> list[int]:
        """The status codes of the answers, in order."""
        return [int(m) for m in re.findall(rb"(?m)^HTTP/1\.[01] (\d{3}) ", self.data)]

    @property
    def headers(self) -> dict[str, str]:
        """The first answer's headers, names lower-cased."""
        head = self.data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)}

    @property
    def body(self) -> bytes:
        """The first answer's body, to its ``Content-Length``."""
        rest = self.data.partition(b"\r\n\r\n")[2]
        return rest[: int(self.headers.get("content-length", len(rest)))]


def converse(port: int, *parts: bytes, pause: float = 0.1, timeout: float = 10) -> Reply:
    """Send ``parts`` on one connection, ``pause`` seconds apart, and read until it ends."""
    data, ending = b"", "eof"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for i, part in enumerate(parts):
                if i:
                    time.sleep(pause)
                sock.sendall(part)
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            ending = "reset"
    return Reply(data, ending)
