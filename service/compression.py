"""gzip requests, inflated within the admission byte budget.

grpc would inflate a compressed message before any Python code runs, each to the receive limit, however
many arrive at once (16 messages of 76 KB took 2 GiB). So the server turns grpc's per-message
decompression off and accepts only identity and gzip (server.py): a message arrives as it was sent, and a
gzip one is inflated here, in steps, each step's bytes reserved from the RPC's admission first. A protobuf
message never starts with the gzip magic (its first byte, 0x1f, would be field 3 of wire type 7, which
does not exist), so the magic tells a compressed message apart.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from service.errors import MalformedRequestError, RequestTooLargeError

GZIP_MAGIC = b"\x1f\x8b"
# Inflated a step at a time: each step is reserved before it exists.
STEP_BYTES = 1 << 20


def is_gzip(raw: bytes) -> bool:
    """Whether `raw` is a gzip stream rather than a protobuf message."""
    return raw[:2] == GZIP_MAGIC


def inflate(raw: bytes, *, limit: int, reserve: Callable[[int], None]) -> bytes:
    """The message `raw` (gzip) holds, at most `limit` bytes; `reserve(n)` is told of every n bytes
    before they are made, and raises to stop (admission's OverloadedError)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    pending = raw
    try:
        while True:
            step = min(STEP_BYTES, limit - size + 1)
            reserve(step)
            part = inflater.decompress(pending, step)
            reserve(len(part) - step)  # give back what the step did not use
            size += len(part)
            if size > limit:
                raise RequestTooLargeError(f"the request inflates to more than {limit} bytes, the limit")
            parts.append(part)
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not part):
                break
    except zlib.error:
        raise MalformedRequestError("the request is not a valid gzip stream") from None
    if not inflater.eof:
        raise MalformedRequestError("the request's gzip stream is cut short")
    return b"".join(parts)
