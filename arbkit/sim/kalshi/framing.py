"""Server-side WebSocket framing of the Kalshi world: raw text frames and error frames."""

from __future__ import annotations

from typing import Any

from arbkit.sim.kalshi.vocab import ErrorCode
from arbkit.sim.kalshi.wire import Json, frame

_HEADERS: dict[int, bytes] = {}


def _header(n: int) -> bytes:
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


def ws_frames(texts: list[bytes]) -> bytes:
    """Unmasked server-to-client WebSocket text frames (RFC 6455 §5.2), back to back."""
    parts: list[bytes] = []
    append = parts.append
    headers = _HEADERS
    for text in texts:
        n = len(text)
        header = headers.get(n)
        if header is None:
            header = headers[n] = _header(n)
        append(header)
        append(text)
    return b"".join(parts)


def error_frame(code: ErrorCode, cmd_id: int | None = None, **extra: Any) -> bytes:
    """A Kalshi ``error`` frame (reference §3.4): ``id`` only when the command had one."""
    obj: Json = {"type": "error"}
    if cmd_id:
        obj["id"] = cmd_id
    obj["msg"] = {"code": int(code), "msg": code.message, **extra}
    return frame(obj)
