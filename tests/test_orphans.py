"""Finding a batch the provider created but tierline never recorded, among others of the same size."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from core.limits import BatchGroup
from core.outcomes import ItemContext
from core.validation import Accepted, validate
from providers import make_provider
from streams.settings import Settings
from streams.state.spool import Spool
from streams.local.workload import make_items


def spooled(spool: Spool, key: str, items: list[dict]):  # type: ignore[no-untyped-def]
    for item in items:
        accepted = validate(orjson.dumps(item), Settings.from_env({}).caps)
        assert isinstance(accepted, Accepted)
        spool.append(key, accepted.line, orjson.dumps(ItemContext(item["custom_id"], 1, 0, {}, None).encode()))
    return spool.finish(key, BatchGroup("anthropic", None, None), len(items), 0)


def test_an_anthropic_orphan_is_never_a_batch_another_record_claims(
        emulator_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{emulator_port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator-key")
    spool = Spool(tmp_path)

    async def scenario() -> tuple[str, str, str | None, str | None]:
        provider = make_provider("anthropic", Settings())
        try:
            since = time.time()
            # Two batches of three items: one recorded by its batch record, one orphaned by a crash.
            anthropic = ("anthropic",)
            recorded = await provider.submit(spooled(spool, "tl-a", make_items(3, "orphan-a", providers=anthropic)))
            orphan_batch = spooled(spool, "tl-b", make_items(3, "orphan-b", providers=anthropic))
            orphan = await provider.submit(orphan_batch)
            found = await provider.find(orphan_batch, since, claimed={recorded})
            none_left = await provider.find(orphan_batch, since, claimed={recorded, orphan})
            return recorded, orphan, found, none_left
        finally:
            await provider.close()

    recorded, orphan, found, none_left = asyncio.run(scenario())
    assert found == orphan != recorded
    assert none_left is None  # every candidate claimed: submit anew
