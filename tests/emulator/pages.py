"""What the List and Retrieve tests share: records created in one namespace, and every page of a call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator import DEFAULT_MEMORY_ID
from tests.helpers import record_input

STRATEGY = "strategy-1"


def create_records(client: Any, namespace: str, *records: dict[str, Any]) -> list[str]:
    """Create records (overrides of `record_input`) in `namespace` with a strategy; their ids in order."""
    created = client.batch_create_memory_records(
        memoryId=DEFAULT_MEMORY_ID,
        records=[
            record_input(**{"namespaces": [namespace], "memoryStrategyId": STRATEGY, **r}) for r in records
        ],
    )
    assert created["failedRecords"] == []
    return [result["memoryRecordId"] for result in created["successfulRecords"]]


def create_texts(client: Any, namespace: str, *texts: str) -> list[str]:
    return create_records(client, namespace, *({"content": {"text": text}} for text in texts))


def all_pages(
    call: Callable[..., dict[str, Any]], max_pages: int = 50, **params: Any
) -> list[list[dict[str, Any]]]:
    """Each page's summaries, following nextToken until a reply has none (at most `max_pages`)."""
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    for _ in range(max_pages):
        reply = call(memoryId=DEFAULT_MEMORY_ID, **params, **({"nextToken": token} if token else {}))
        pages.append(reply["memoryRecordSummaries"])
        token = reply.get("nextToken")
        if token is None:
            return pages
    raise AssertionError(f"still a nextToken after {max_pages} pages")
