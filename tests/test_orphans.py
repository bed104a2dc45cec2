"""Finding a batch the provider created but tierline never recorded, among others of the same size."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from core.limits import BatchGroup
from core.outcomes import ItemContext
from core.validation import Accepted, validate
from providers import NotYetKnown, make_provider
from providers.anthropic import batches as anthropic_batches
from streams.settings import Settings
from streams.state.spool import Spool
from streams.local.stack import free_port, running, s3_env
from streams.local.workload import make_items
from tests.support import emulator_argv


def spooled(spool: Spool, key: str, items: list[dict]):  # type: ignore[no-untyped-def]
    for item in items:
        accepted = validate(orjson.dumps(item), Settings.from_env({}).catalogue)
        assert isinstance(accepted, Accepted)
        spool.append(key, accepted.line, orjson.dumps(ItemContext(item["custom_id"], 1, 0, {}, None).encode()))
    return spool.finish(key, BatchGroup("anthropic", None, None), len(items), 0)


@pytest.fixture(scope="module")
def slow_emulator_port(tmp_path_factory: pytest.TempPathFactory, s3_port: int) -> Iterator[int]:
    """An emulator of its own whose batches take 4 s: time to look for one before it ends."""
    port = free_port()
    with running(emulator_argv(port, 4), port, env=s3_env(s3_port), log=tmp_path_factory.mktemp("slow") / "log"):
        yield port


def test_an_anthropic_orphan_is_never_a_batch_another_record_claims_nor_one_of_other_items(
        slow_emulator_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{slow_emulator_port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator-key")
    monkeypatch.setattr(anthropic_batches, "RECORD_GRACE_S", 0.0)  # long past: any batch unrecorded may be one
    spool = Spool(tmp_path)

    async def scenario() -> tuple[str, str, NotYetKnown | None, str | None, str | None, str | None]:
        provider = make_provider("anthropic", Settings())
        try:
            since = time.time()
            # Two batches of three items: one recorded by its batch record, one orphaned by a crash; and a
            # third intent of three other items, resumed beside the orphan's (the worker was cut off).
            anthropic = ("anthropic",)
            recorded = await provider.submit(spooled(spool, "tl-a", make_items(3, "orphan-a", providers=anthropic)))
            orphan_batch = spooled(spool, "tl-b", make_items(3, "orphan-b", providers=anthropic))
            never_created = spooled(spool, "tl-c", make_items(3, "orphan-c", providers=anthropic))
            orphan = await provider.submit(orphan_batch)
            try:
                await provider.find(orphan_batch, since, claimed={recorded})
                unended = None
            except NotYetKnown as exc:  # whose items it holds is known once it ends
                unended = exc
            while not (await provider.status(orphan)).ended:
                await asyncio.sleep(0.2)
            found = await provider.find(orphan_batch, since, claimed={recorded})
            not_its = await provider.find(never_created, since, claimed={recorded})
            none_left = await provider.find(orphan_batch, since, claimed={recorded, orphan})
            return recorded, orphan, unended, found, not_its, none_left
        finally:
            await provider.close()

    recorded, orphan, unended, found, not_its, none_left = asyncio.run(scenario())
    assert unended is not None and orphan in str(unended)
    assert found == orphan != recorded
    assert not_its is None  # the same size, other items: not taken for it (its items would all go missing)
    assert none_left is None  # every candidate claimed: submit anew


def test_a_batch_of_the_same_size_just_created_is_not_taken_until_it_is_known_whose_it_is(
        emulator_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed intent whose create never reached Anthropic, while another worker has just created a batch
    of the same size and not yet recorded it: that batch is not taken for the lost one (its items would all
    go missing, and the other worker's results come in as strangers). Once it is recorded, nothing is
    found: the batch is created."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{emulator_port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator-key")
    spool = Spool(tmp_path)

    async def scenario() -> tuple[str, NotYetKnown | None, str | None]:
        provider = make_provider("anthropic", Settings())
        try:
            since = time.time()
            anthropic = ("anthropic",)
            lost = spooled(spool, "tl-lost", make_items(4, "lost", providers=anthropic))
            others = await provider.submit(spooled(spool, "tl-other", make_items(4, "other", providers=anthropic)))
            try:
                await provider.find(lost, since, claimed=set())
                undecided = None
            except NotYetKnown as exc:
                undecided = exc
            return others, undecided, await provider.find(lost, since, claimed={others})
        finally:
            await provider.close()

    others, undecided, found = asyncio.run(scenario())
    assert undecided is not None and 0 < undecided.retry_in_s <= anthropic_batches.RECORD_GRACE_S
    assert others in str(undecided)
    assert found is None
