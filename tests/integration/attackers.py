"""Attackers of test_hostile_connections.py, each run in a process of its own
(`python -m tests.integration.attackers <attack> --port P ...`), so that their CPU and sockets are not
the test's. Loopback only; every loop is bounded in count and in time. Each prints one JSON line of what
it saw when done; `idle` also prints one when its connections are open, then idles until its stdin
closes (or its time is up).

watch-race   threads that each loop: Health/Watch, read one answer, cancel
rapid-reset  raw HTTP/2: a Check request (HEADERS, DATA) and at once RST_STREAM, again and again
hold         raw HTTP/2: streams that send HEADERS and never a message; with --replace each one the
             server ends is opened again, so that as many stay held for the whole attack
idle         raw HTTP/2: connections that send the preface and SETTINGS, then nothing
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import select
import selectors
import socket
import sys
import threading
import time
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
from grpc_health.v1 import health_pb2, health_pb2_grpc

CHECK = "/grpc.health.v1.Health/Check"
CANCEL = 0x8


def raise_open_files_limit() -> int:
    """RLIMIT_NOFILE's soft limit raised to its hard one; the limit now."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def grpc_message(payload: bytes) -> bytes:
    """A gRPC length-prefixed message, uncompressed."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class Connection:
    """One raw HTTP/2 client connection: a socket and h2's state of it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.h2.initiate_connection()
        self.closed = False
        self.flush()

    def headers(self, path: str) -> list[tuple[str, str]]:
        return [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", f"127.0.0.1:{self.port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.closed:
            try:
                self.socket.sendall(data)
            except OSError:
                self.closed = True

    def readable(self, timeout: float = 0.0) -> bool:
        return bool(select.select([self.socket], [], [], timeout)[0])

    def receive(self) -> list[h2.events.Event]:
        """The events of what has arrived (the socket must be readable); [] once it is closed."""
        try:
            data = self.socket.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return []
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return []
        self.flush()  # SETTINGS and PING acks, WINDOW_UPDATEs
        if any(isinstance(event, h2.events.ConnectionTerminated) for event in events):
            self.closed = True
        return list(events)

    def close(self) -> None:
        self.closed = True
        self.socket.close()


def watch_race(args: argparse.Namespace) -> dict[str, Any]:
    end = time.monotonic() + args.seconds
    seen: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def loop() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(args.max_cycles):
                if time.monotonic() >= end:
                    break
                outcome = "answered"
                try:
                    answers = stub.Watch(health_pb2.HealthCheckRequest(), timeout=2)
                    next(answers)
                    answers.cancel()
                except grpc.RpcError as error:
                    outcome = error.code().name
                with lock:
                    seen[outcome] += 1

    # Daemons: grpc's sync client can itself hang in a Watch cancelled as its answer arrives; such a
    # thread is reported (`stuck`), and the process still ends. The server is judged by the prober.
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()) + 5)
    return {"cycles": dict(seen), "stuck": sum(thread.is_alive() for thread in threads)}


def rapid_reset(args: argparse.Namespace) -> dict[str, Any]:
    end = time.monotonic() + args.seconds
    request = grpc_message(health_pb2.HealthCheckRequest().SerializeToString())
    sent = connections = goaways = 0
    connection: Connection | None = None
    while sent < args.max_streams and time.monotonic() < end:
        if connection is None or connection.closed:
            if connection is not None:
                connection.close()
            try:
                connection = Connection(args.port)
            except OSError:
                time.sleep(0.01)
                continue
            connections += 1
        for _ in range(args.burst):
            stream_id = connection.h2.get_next_available_stream_id()
            connection.h2.send_headers(stream_id, connection.headers(CHECK))
            connection.h2.send_data(stream_id, request, end_stream=True)
            connection.h2.reset_stream(stream_id, error_code=CANCEL)
            sent += 1
        connection.flush()
        while not connection.closed and connection.readable():
            events = connection.receive()
            goaways += sum(isinstance(event, h2.events.ConnectionTerminated) for event in events)
    if connection is not None:
        connection.close()
    return {"streams": sent, "connections": connections, "goaways": goaways}


def hold(args: argparse.Namespace) -> dict[str, Any]:
    """Streams of `args.path` that send HEADERS and never DATA, `args.streams` spread over
    `args.connections` connections; how and when the server ended them."""
    connections = [Connection(args.port) for _ in range(args.connections)]
    opened_at: dict[tuple[int, int], float] = {}
    ended: collections.Counter[str] = collections.Counter()
    delays: list[float] = []
    opened = 0

    def open_one(index: int) -> None:
        nonlocal opened
        connection = connections[index]
        stream_id = connection.h2.get_next_available_stream_id()
        connection.h2.send_headers(stream_id, connection.headers(args.path))
        connection.flush()
        opened_at[(index, stream_id)] = time.monotonic()
        opened += 1

    def end(index: int, stream_id: int, how: str) -> None:
        started = opened_at.pop((index, stream_id), None)
        if started is None:
            return
        ended[how] += 1
        delays.append(time.monotonic() - started)
        if args.replace and opened < args.max_streams and not connections[index].closed:
            open_one(index)

    # Each connection's SETTINGS first, so that the streams respect what the server advertises.
    for connection in connections:
        settled = False
        while not settled and connection.readable(1.0):
            events = connection.receive()
            settled = any(isinstance(event, h2.events.RemoteSettingsChanged) for event in events)
    for i in range(args.streams):
        open_one(i % args.connections)
    print(json.dumps({"held": len(opened_at)}), flush=True)
    least_held = len(opened_at)
    finish = time.monotonic() + args.seconds
    while time.monotonic() < finish and any(not c.closed for c in connections):
        live = [c.socket for c in connections if not c.closed]
        readable, _, _ = select.select(live, [], [], 0.05)
        for index, connection in enumerate(connections):
            if connection.socket not in readable:
                continue
            for event in connection.receive():
                if isinstance(event, h2.events.StreamReset):
                    end(index, event.stream_id, f"RST_STREAM {event.error_code}")
                elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    headers: dict[Any, Any] = dict(event.headers or ())  # str: header_encoding
                    status = headers.get("grpc-status")
                    if status is not None:
                        end(index, event.stream_id, f"grpc-status {status}")
            if connection.closed:
                for key in [key for key in opened_at if key[0] == index]:
                    end(*key, "connection closed")
        least_held = min(least_held, len(opened_at))
    still_held = len(opened_at)
    for connection in connections:
        connection.close()
    delays.sort()
    return {
        "opened": opened,
        "ended": dict(ended),
        "still_held": still_held,
        "least_held": least_held,
        "delay_min": delays[0] if delays else None,
        "delay_max": delays[-1] if delays else None,
    }


def idle(args: argparse.Namespace) -> dict[str, Any]:
    raise_open_files_limit()
    connections: list[Connection] = []
    refused = 0
    for _ in range(args.connections):
        try:
            connections.append(Connection(args.port))
        except OSError:
            refused += 1

    def serve_frames(seconds: float) -> None:
        """Read and answer the server's frames (SETTINGS and PING acks) for `seconds`, or until stdin
        closes (the test is done with us)."""
        with selectors.DefaultSelector() as ready:  # epoll: select() stops at descriptor 1023
            ready.register(sys.stdin, selectors.EVENT_READ, None)
            for connection in connections:
                if not connection.closed:
                    ready.register(connection.socket, selectors.EVENT_READ, connection)
            finish = time.monotonic() + seconds
            while time.monotonic() < finish:
                for key, _ in ready.select(timeout=0.05):
                    if key.data is None:
                        if not sys.stdin.readline():
                            return
                        continue
                    key.data.receive()
                    if key.data.closed:
                        ready.unregister(key.fileobj)

    serve_frames(args.settle)
    open_now = sum(not c.closed for c in connections)
    print(json.dumps({"opened": len(connections), "refused": refused, "open": open_now}), flush=True)
    serve_frames(args.seconds)
    report = {"open_at_end": sum(not c.closed for c in connections)}
    for connection in connections:
        connection.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    attacks = parser.add_subparsers(dest="attack", required=True)
    race = attacks.add_parser("watch-race")
    race.add_argument("--threads", type=int, default=4)
    race.add_argument("--max-cycles", type=int, default=100_000)
    reset = attacks.add_parser("rapid-reset")
    reset.add_argument("--max-streams", type=int, default=500_000)
    reset.add_argument("--burst", type=int, default=100)
    held = attacks.add_parser("hold")
    held.add_argument("--path", required=True)
    held.add_argument("--streams", type=int, default=120)
    held.add_argument("--connections", type=int, default=4)
    held.add_argument("--replace", action="store_true")
    held.add_argument("--max-streams", type=int, default=5_000)
    idling = attacks.add_parser("idle")
    idling.add_argument("--connections", type=int, default=2_000)
    idling.add_argument("--settle", type=float, default=1.0)
    for attack in (race, reset, held, idling):
        attack.add_argument("--port", type=int, required=True)
        attack.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    run = {"watch-race": watch_race, "rapid-reset": rapid_reset, "hold": hold, "idle": idle}[args.attack]
    print(json.dumps(run(args)), flush=True)
    os._exit(0)  # without waiting for a client thread grpc itself left hanging (see watch_race)


if __name__ == "__main__":
    main()
