"""compression.py: a gzip request told apart from a protobuf one, and inflated a step at a time within its
limit, each step reserved before it is made, so that a gzip bomb is refused without being inflated."""

from __future__ import annotations

import functools
import gzip
import struct
import zlib

import pytest
from agentcore.memory.v1 import memory_records_pb2 as pb

from service import compression
from service.api.request_errors import MalformedRequestError, RequestTooLargeError
from tests.helpers import MEMORY_ID, record_create

MIB = 1 << 20


class Reservations:
    """A `reserve` callback that writes down every reservation, and can refuse one as admission does."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.calls: list[int] = []
        self.refuse_after = refuse_after  # how many reservations pass before one is refused
        self.held = 0
        self.peak = 0

    def __call__(self, count: int) -> None:
        if self.refuse_after is not None and len(self.calls) >= self.refuse_after:
            raise OverflowError("over the admission byte budget")
        self.calls.append(count)
        self.held += count
        self.peak = max(self.peak, self.held)


@functools.cache
def gzip_bomb(inflated_mib: int) -> bytes:
    """A valid gzip stream of `inflated_mib` MiB of zero bytes, about a thousandth of that in size: one
    compressed MiB, repeated (a full flush makes each repetition stand alone)."""
    zeros = bytes(MIB)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    final_block = b"\x03\x00"
    trailer = struct.pack("<II", crc, (inflated_mib * MIB) & 0xFFFFFFFF)
    return header + block * inflated_mib + final_block + trailer


def test_the_bomb_builder_makes_a_valid_gzip_stream() -> None:
    assert gzip.decompress(gzip_bomb(3)) == bytes(3 * MIB)


# --- is_gzip ---------------------------------------------------------------------------------------


def test_a_gzip_stream_is_recognised_by_its_magic() -> None:
    assert compression.is_gzip(gzip.compress(b"anything"))
    assert compression.is_gzip(gzip.compress(b""))


@pytest.mark.parametrize(
    "message",
    [
        pb.GetRequest(memory_id=MEMORY_ID, memory_record_id="mem-x"),
        pb.BatchCreateRequest(memory_id=MEMORY_ID, records=[record_create()]),
        pb.ListRequest(),
    ],
    ids=["Get", "BatchCreate", "empty"],
)
def test_a_protobuf_message_is_never_taken_for_gzip(message: pb.GetRequest) -> None:
    assert not compression.is_gzip(message.SerializeToString())


@pytest.mark.parametrize(
    "raw", [b"", b"\x1f", b"\x8b\x1f", b"\x1f\x8a"], ids=["empty", "half", "swapped", "near"]
)
def test_bytes_without_the_whole_magic_are_not_gzip(raw: bytes) -> None:
    assert not compression.is_gzip(raw)


# --- inflated_limit --------------------------------------------------------------------------------


def test_the_inflated_limit_is_the_receive_limit_when_the_byte_budget_holds_three_copies() -> None:
    assert compression.inflated_limit(4 * MIB, 64 * MIB) == 4 * MIB


def test_the_inflated_limit_is_a_third_of_the_byte_budget_when_that_is_less() -> None:
    assert compression.inflated_limit(64 * MIB, 64 * MIB) == 64 * MIB // 3
    assert compression.inflated_limit(64 * MIB, 3 * MIB) == MIB


# --- inflate ---------------------------------------------------------------------------------------


def test_a_gzip_request_inflates_to_the_message_it_holds() -> None:
    message = pb.BatchCreateRequest(
        memory_id=MEMORY_ID, records=[record_create(f"text {i}") for i in range(50)]
    )
    raw = message.SerializeToString()
    reserve = Reservations()
    inflated = compression.inflate(gzip.compress(raw), limit=len(raw), reserve=reserve)
    assert bytes(inflated) == raw
    assert pb.BatchCreateRequest.FromString(bytes(inflated)) == message


def test_an_empty_gzip_stream_inflates_to_nothing() -> None:
    assert compression.inflate(gzip.compress(b""), limit=10, reserve=Reservations()) == b""


def test_a_request_of_several_steps_is_reserved_three_times_over_as_it_is_inflated() -> None:
    data = bytes(range(256)) * (10 * MIB // 256) + b"tail"  # 10 MiB and a little: 11 steps
    reserve = Reservations()
    inflated = compression.inflate(gzip.compress(data, compresslevel=1), limit=len(data), reserve=reserve)
    assert bytes(inflated) == data
    # What stays reserved is what is held: every inflated byte three times.
    assert reserve.held == compression.HELD_COPIES * len(data)
    # Each step is reserved before it is made, a step at a time, never the whole request at once.
    assert max(reserve.calls) <= compression.HELD_COPIES * compression.STEP_BYTES
    assert reserve.peak <= compression.HELD_COPIES * (len(data) + compression.STEP_BYTES)
    assert sum(1 for count in reserve.calls if count > 0) >= len(data) // compression.STEP_BYTES


def test_a_request_that_inflates_to_exactly_the_limit_is_accepted() -> None:
    data = b"a" * (2 * MIB)
    assert len(compression.inflate(gzip.compress(data), limit=len(data), reserve=Reservations())) == len(data)


def test_a_request_that_inflates_one_byte_past_the_limit_is_refused() -> None:
    data = b"a" * (2 * MIB + 1)
    with pytest.raises(RequestTooLargeError, match=f"more than {2 * MIB} bytes"):
        compression.inflate(gzip.compress(data), limit=2 * MIB, reserve=Reservations())


def test_a_gzip_bomb_is_refused_without_being_inflated_whole() -> None:
    """A GiB of zeros in about a MiB of gzip, against a 4 MiB limit: refused, and no more than the limit
    (and one byte) was ever reserved, so no more was ever made."""
    limit = 4 * MIB
    reserve = Reservations()
    with pytest.raises(RequestTooLargeError):
        compression.inflate(gzip_bomb(1024), limit=limit, reserve=reserve)
    assert reserve.peak <= compression.HELD_COPIES * (limit + 1)
    assert sum(1 for count in reserve.calls if count > 0) <= limit // compression.STEP_BYTES + 1


def test_a_refused_reservation_stops_inflating_before_the_next_step_is_made() -> None:
    """Admission refuses the third step: the refusal reaches the caller, and inflating stops there."""
    reserve = Reservations(refuse_after=4)  # step 1 and its give-back, step 2 and its give-back
    with pytest.raises(OverflowError):
        compression.inflate(gzip_bomb(16), limit=16 * MIB, reserve=reserve)
    assert reserve.held == compression.HELD_COPIES * 2 * compression.STEP_BYTES


def test_a_gzip_stream_cut_short_is_malformed() -> None:
    raw = gzip.compress(bytes(range(256)) * 1000)
    with pytest.raises(MalformedRequestError, match="cut short"):
        compression.inflate(raw[: len(raw) // 2], limit=MIB, reserve=Reservations())


def test_a_gzip_stream_with_a_wrong_checksum_is_malformed() -> None:
    raw = bytearray(gzip.compress(b"some request"))
    raw[-8] ^= 0xFF  # the CRC32 of the trailer
    with pytest.raises(MalformedRequestError, match="not a valid gzip stream"):
        compression.inflate(bytes(raw), limit=MIB, reserve=Reservations())


def test_garbage_after_the_gzip_magic_is_malformed() -> None:
    with pytest.raises(MalformedRequestError, match="not a valid gzip stream"):
        compression.inflate(compression.GZIP_MAGIC + b"\x00garbage", limit=MIB, reserve=Reservations())
