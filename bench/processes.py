"""The processes a bench run starts (emulator, facade, echo server, callers), on loopback only, and
what it reads off them: CPU seconds and RSS from /proc, instructions from callgrind."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 600  # a process under callgrind starts slowly
CALLGRIND = [
    "valgrind",
    "--tool=callgrind",
    "--instr-atstart=no",
    "--collect-systime=no",
    "--error-limit=no",
    "--log-file=/dev/null",
]


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"PYTHONPATH": f"{ROOT / 'generated'}:{ROOT}", **variables})
    return env


def _drain(stream: IO[str]) -> None:
    threading.Thread(target=stream.read, daemon=True).start()


def _wait_for(stream: IO[str], pattern: str) -> re.Match[str]:
    compiled = re.compile(pattern)
    for line in stream:
        found = compiled.search(line)
        if found:
            return found
    raise RuntimeError(f"the process ended before printing {pattern!r}")


@dataclass
class Process:
    popen: subprocess.Popen[str]
    address: str  # an endpoint URL or host:port
    callgrind_out: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    # --- callgrind ----------------------------------------------------------------------------

    def instructions(self, window: Any) -> int:
        """Instructions this process executed while `window()` ran (callgrind toggled around it)."""
        subprocess.run(["callgrind_control", "-i", "on", str(self.pid)], check=True, capture_output=True)
        try:
            window()
        finally:
            subprocess.run(["callgrind_control", "-i", "off", str(self.pid)], check=True, capture_output=True)
        before = set(glob.glob(f"{self.callgrind_out}.*"))
        subprocess.run(["callgrind_control", "-d", str(self.pid)], check=True, capture_output=True)
        [dump] = set(glob.glob(f"{self.callgrind_out}.*")) - before
        # `summary:` at the top can read 0 when instrumentation was off at start; `totals:` ends the file.
        totals = [line for line in Path(dump).read_text().splitlines() if line.startswith("totals:")]
        if not totals:
            raise RuntimeError(f"no totals in {dump}")
        return int(totals[-1].split()[1])


def _command(module_args: list[str], callgrind_out: Path | None) -> list[str]:
    python = [sys.executable, *module_args]
    if callgrind_out is None:
        return python
    return [*CALLGRIND, f"--callgrind-out-file={callgrind_out}.%p", *python]


def start_emulator(latency_seconds: float) -> Process:
    args = ["-m", "emulator", "--port", "0", "--log-level", "INFO", "--fault-latency", str(latency_seconds)]
    popen = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=environment(), stderr=subprocess.PIPE, text=True
    )
    assert popen.stderr is not None
    url = _wait_for(popen.stderr, r"listening on (http://\S+)").group(1)
    _drain(popen.stderr)
    return Process(popen, url)


def start_facade(
    emulator_url: str,
    *,
    callgrind_out: Path | None = None,
    environ: dict[str, str] | None = None,
    **settings: str,
) -> Process:
    """The facade on the emulator, with `settings` (and `environ`) as its environment variables."""
    settings = {**settings, **(environ or {})}
    env = environment(
        AGENTCORE_BACKEND="aws",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL_BEDROCK_AGENTCORE=emulator_url,
        GRPC_HOST="127.0.0.1",
        GRPC_PORT="0",
        METRICS_PORT="0",
        **settings,
    )
    popen = subprocess.Popen(
        _command(["-m", "service"], callgrind_out), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    assert popen.stderr is not None
    # The line that says it serves (with WORKERS > 1, the supervisor's, once every worker serves).
    port = _wait_for(popen.stderr, r'"message": "serving [^"]*".*"grpcPort": (\d+)').group(1)
    _drain(popen.stderr)
    return Process(popen, f"127.0.0.1:{port}", callgrind_out)


def start_echo(model: str = "sync") -> Process:
    """bench/echo.py serving in `model` (sync, aio or aio-thread)."""
    popen = subprocess.Popen(
        [sys.executable, "-m", "bench.echo", model],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert popen.stdout is not None
    port = int(popen.stdout.readline())
    return Process(popen, f"127.0.0.1:{port}")


class Sink(Process):
    """bench/otlp_sink.py, and the spans it has received so far."""

    spans: int = 0

    def _count(self, stream: IO[str]) -> None:
        for line in stream:
            self.spans = int(line.split()[1])


def start_sink() -> Sink:
    popen = subprocess.Popen(
        [sys.executable, "-m", "bench.otlp_sink"],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert popen.stdout is not None
    port = int(popen.stdout.readline())
    sink = Sink(popen, f"127.0.0.1:{port}")
    threading.Thread(target=sink._count, args=(popen.stdout,), daemon=True).start()
    return sink


class Caller(Process):
    """A caller process (bench/caller.py) and its command channel."""

    def send(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()
        answer: dict[str, Any] = json.loads(self.popen.stdout.readline())
        return answer

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.send_quit()
        super().stop()

    def send_quit(self) -> None:
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.popen.stdin.flush()
        except BrokenPipeError:
            pass


def start_caller(mode: str, target: str, *, callgrind_out: Path | None = None) -> Caller:
    popen = subprocess.Popen(
        _command(["-m", "bench.caller", mode, target], callgrind_out),
        cwd=ROOT,
        env=environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert popen.stdout is not None
    ready = json.loads(popen.stdout.readline())
    assert ready == {"ready": True}, ready
    return Caller(popen, target, callgrind_out)
