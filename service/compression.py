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

from service.api.request_errors import MalformedRequestError, RequestTooLargeError

GZIP_MAGIC = b"\x1f\x8b"
# Inflated a step at a time: each step is reserved before it exists.
STEP_BYTES = 1 << 20
# An inflated request is held three times at its peak (measured): as bytes, as the message parsed from
# them, and as the Python strings the checks read from the message.
HELD_COPIES = 3


def inflated_limit(max_request_bytes: int, inflight_bytes: int) -> int:
    """The most a gzip request may inflate to: the receive limit, and no more than its copies fit in
    the admission byte budget (MAX_INFLIGHT_BYTES / 3: 52 MiB by default, 21 MiB at 64 MiB)."""
    return min(max_request_bytes, inflight_bytes // HELD_COPIES)


def is_gzip(raw: bytes) -> bool:
    """Whether `raw` is a gzip stream rather than a protobuf message."""
    return raw[:2] == GZIP_MAGIC


def inflate(raw: bytes, *, limit: int, reserve: Callable[[int], None]) -> bytearray:
    """The message `raw` (gzip) holds, at most `limit` bytes; `reserve(n)` is told of every n bytes
    before they are made, and raises to stop (admission's OverloadedError). Each inflated byte is
    reserved HELD_COPIES times, as often as it will be held."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    # One buffer grown in place (a large realloc is a remap, not a copy): no list of parts to join.
    inflated = bytearray()
    pending = raw
    try:
        while not inflater.eof:
            step = min(STEP_BYTES, limit - len(inflated) + 1)
            reserve(HELD_COPIES * step)
            part = inflater.decompress(pending, step)
            reserve(HELD_COPIES * (len(part) - step))  # give back what the step did not use
            if len(inflated) + len(part) > limit:
                raise RequestTooLargeError(f"the request inflates to more than {limit} bytes, the limit")
            inflated += part
            pending = inflater.unconsumed_tail
            if not part and not pending and not inflater.eof:
                raise MalformedRequestError("the request's gzip stream is cut short")
    except zlib.error:
        raise MalformedRequestError("the request is not a valid gzip stream") from None
    return inflated
