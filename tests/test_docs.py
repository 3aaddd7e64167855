"""The shell blocks of README.md and docs/*.md work as written: those that talk to a running service run,
in order, against one (on its ports, without PYTHONPATH); those that start the emulator start it, from a
directory without var/; `make` lines are the Makefile's targets (make test runs them); blocks that need
what cannot be installed here (a registry, a cluster) say `not run here` and are skipped; RUN_ELSEWHERE
names the tests that run the others. The tables the code produces are what docs/tables.py writes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from docs import tables
from service import settings
from service.security import authz
from tests.helpers import ROOT, service_process

NOT_HERE = "not run here"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    block
    for page in PAGES
    for block in re.findall(r"^```sh\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL)
]
# The other fenced blocks: (page, language, the text before it, the block).
SNIPPETS = [
    (page.name, language, text[: match.start()], body)
    for page in PAGES
    for text in [page.read_text()]
    for match in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    for language, body in [match.groups()]
    if language != "sh"
]
# Code that needs what cannot be installed here says so in the paragraph that leads to it.
NOT_RUN_BY_THE_TESTS = "not run by the tests"
# How a snippet of each language runs: its interpreter, reading the snippet on stdin, from the repo root.
INTERPRETERS = {
    "python": [str(ROOT / ".venv" / "bin" / "python"), "-"],
    "js": ["node", "--input-type=module", "-"],
}


# Snippets of languages the docs cannot run from a page: each is, line for line, a region of a test
# that `make test` runs, between `// --- begin docs/<page>: <language> ---` and its `end` line.
TESTED_REGIONS = {
    (match["page"], match["language"], textwrap.dedent(match["body"]))
    for path in sorted((ROOT / "tests").glob("*/**/*"))
    if path.suffix in {".go", ".java", ".ts"}
    for match in re.finditer(
        r"^\s*// --- begin docs/(?P<page>[\w.-]+): (?P<language>\w+) ---\n(?P<body>.*?)"
        r"^\s*// --- end docs/(?P=page): (?P=language) ---$",
        path.read_text(),
        re.MULTILINE | re.DOTALL,
    )
}

# Blocks that another test runs as written, by a command they hold.
RUN_ELSEWHERE = {"proto-loader-gen-types": "tests/integration/test_node_client.py"}


def docs_block(command: str) -> str:
    """The one shell block of the docs that holds `command`."""
    [block] = [b for b in BLOCKS if command in b]
    return block


def _runnable(block: str) -> str:
    # `make` lines, settings before them included (`WORKERS=2 make run`).
    return "\n".join(line for line in block.splitlines() if not re.match(r"([A-Z_]+=\S* )*make ", line))


SERVICE_BLOCKS = [b for b in BLOCKS if NOT_HERE not in b and re.search(r"localhost:(50051|9464)", b)]
EMULATOR_BLOCKS = [
    _runnable(b)
    for b in BLOCKS
    if NOT_HERE not in b and "agentcore-memory-emulator" in b and b not in SERVICE_BLOCKS
]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}


def _expected(block: str) -> list[str]:
    """The outputs the block's trailing comments (`# ` or `// `) promise, up to any `...`."""
    lines = block.rstrip().splitlines()
    promised = []
    while lines and lines[-1].startswith(("# ", "// ")):
        promised.append(lines.pop().split(" ", 1)[1].split("...")[0].rstrip(", "))
    return promised


def _on_ports(text: str, ports: dict[str, int]) -> str:
    return re.sub(r"localhost:(50051|9464)", lambda m: f"127.0.0.1:{ports[m.group(1)]}", text)


def _run(command: list[str], script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, input=script, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60, check=False
    )


def _holds_its_promise(block: str, ran: subprocess.CompletedProcess[str]) -> None:
    output = ran.stdout + ran.stderr
    assert "Traceback" not in output, output
    promised = _expected(block)
    if promised:
        for text in promised:  # as printed, or pretty-printed over several lines
            assert re.sub(r"\s", "", text) in re.sub(r"\s", "", output), (text, output)
    else:
        assert ran.returncode == 0, (block, output)


SERVICE_SNIPPETS = [
    (language, body)
    for _, language, _, body in SNIPPETS
    if language in INTERPRETERS and "localhost:50051" in body
]
STANDALONE_SNIPPETS = [
    (language, body)
    for _, language, before, body in SNIPPETS
    if language in INTERPRETERS
    and "localhost:50051" not in body
    and NOT_RUN_BY_THE_TESTS not in before[-2000:]
]


def test_every_block_is_run_or_marked() -> None:
    for block in BLOCKS:
        commands = [
            line for line in _runnable(block).splitlines() if line.strip() and not line.startswith("#")
        ]
        assert (
            not commands
            or NOT_HERE in block
            or block in SERVICE_BLOCKS
            or _runnable(block) in EMULATOR_BLOCKS
            or any(command in block for command in RUN_ELSEWHERE)
        ), block


def test_blocks_against_a_running_service() -> None:
    assert SERVICE_BLOCKS
    assert SERVICE_SNIPPETS
    with service_process(AGENTCORE_BACKEND="local") as (_, start):
        ports = {"50051": start["grpcPort"], "9464": start["metricsPort"]}
        for block in SERVICE_BLOCKS:
            ran = _run(["bash"], _on_ports(block, ports))
            _holds_its_promise(block, ran)
            assert ran.stdout.strip(), block
        for language, snippet in SERVICE_SNIPPETS:
            _holds_its_promise(snippet, _run(INTERPRETERS[language], _on_ports(snippet, ports)))


@pytest.mark.parametrize(("language", "snippet"), STANDALONE_SNIPPETS)
def test_snippets_that_need_no_service_run(language: str, snippet: str) -> None:
    _holds_its_promise(snippet, _run(INTERPRETERS[language], snippet))


def test_every_snippet_is_run_or_says_why_not() -> None:
    for page, language, before, body in SNIPPETS:
        where = f"{page}: a {language} block"
        if language == "json":
            for line in body.splitlines():
                assert isinstance(json.loads(line), dict), where
        elif language == "yaml":
            document = yaml.safe_load(body)
            if "rules" in document:  # a policy, as AUTHZ_POLICY_FILE reads it
                authz.Policy.parse(body.encode())
        elif language in {"go", "java", "ts"}:
            assert (page, language, body) in TESTED_REGIONS, f"{where}: not a region of a test"
        elif language not in INTERPRETERS:
            assert NOT_RUN_BY_THE_TESTS in before[-2000:], where
        else:
            assert (language, body) in SERVICE_SNIPPETS + STANDALONE_SNIPPETS, where


def test_every_tested_region_is_shown_in_the_docs() -> None:
    shown = {(page, language, body) for page, language, _, body in SNIPPETS}
    assert TESTED_REGIONS
    for page, language, body in TESTED_REGIONS:
        assert (page, language, body) in shown, f"a {language} region for {page} that the page does not show"


@pytest.mark.parametrize("block", EMULATOR_BLOCKS)
def test_emulator_blocks_start_it_from_a_clean_directory(block: str, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    script = "exec " + block.replace("--port 8000", "--port 0").replace("\\\n", " ").strip()
    with subprocess.Popen(
        ["bash", "-c", script], cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert "listening on http://" in line, line
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
    assert process.returncode == 0


def test_the_generated_tables_are_what_the_code_declares() -> None:
    for page, page_tables in tables.TABLES.items():
        text = (ROOT / "docs" / page).read_text()
        assert tables.rendered(text, page_tables) == text, f"docs/{page} is stale: run make generate"


def test_a_table_that_drifts_from_the_code_is_written_anew() -> None:
    page = (ROOT / "docs" / "settings.md").read_text()
    drifted = page.replace("| `GRPC_PORT` | `50051` |", "| `GRPC_PORT` | `50052` |")
    assert drifted != page
    assert tables.rendered(drifted, tables.TABLES["settings.md"]) == page
    assert settings.docs_table() in page
