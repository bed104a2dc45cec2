"""Providers declared by configuration: the file's checks, and each lane end to end against the emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from core.cost import PriceTable, billed_tokens
from providers.lanes.declaration import LaneError, parse_lanes
from streams.cli.produce import publish_lines
from streams.local.stack import LANES_FILE
from streams.local.workload import make_items
from streams.settings import Settings, SettingsError
from tests.support import committed_to_end, follow, publish_items, submissions

GROQ = {"kind": "openai-compatible", "base_url": "https://api.groq.com/openai/v1", "api_key_env": "GROQ_API_KEY"}


def test_the_example_file_declares_groq_together_and_azure() -> None:
    lanes = {lane.name: lane for lane in Settings(providers_file=str(LANES_FILE)).lanes}
    assert set(lanes) == {"groq", "together", "azure"}
    assert lanes["together"].purpose == "batch-api" and not lanes["together"].metadata
    assert lanes["azure"].kind == "azure-openai" and lanes["azure"].deployments == {"gpt-4o-mini-batch": "gpt-4o-mini"}


@pytest.mark.parametrize(("spec", "words"), [
    ({"kind": "vertex"}, "kind must be one of openai-compatible, azure-openai"),
    ({"kind": "openai-compatible", "api_key_env": "K"}, "base_url is required"),
    ({**GROQ, "base_url": "api.groq.com"}, "base_url must be an http:// or https:// URL"),
    ({**GROQ, "purpse": "batch"}, "unknown setting 'purpse'"),
    ({**GROQ, "metadata": "no"}, "metadata must be true or false"),
    ({**GROQ, "max_items": True}, "max_items must be a whole number"),
    ({**GROQ, "endpoints": ["v1/chat"]}, "endpoints must be a non-empty list of paths"),
    ({"kind": "azure-openai", "api_key_env": "K", "azure_endpoint": "https://x"}, "api_version is required"),
])
def test_a_declaration_that_cannot_work_says_what_to_fix(spec: dict, words: str) -> None:
    with pytest.raises(LaneError, match=words):
        parse_lanes({"providers": {"groq": spec}})


def test_a_lane_may_not_take_a_built_in_name_and_a_bad_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(LaneError, match="not one of anthropic, bedrock, gemini, openai"):
        parse_lanes({"providers": {"openai": GROQ}})
    broken = tmp_path / "providers.toml"
    broken.write_text("[providers.groq\nkind = 1\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        Settings.from_env({"TIERLINE_PROVIDERS_FILE": str(broken)})
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings.from_env({"TIERLINE_PROVIDERS_FILE": str(tmp_path / "missing.json")})


@pytest.mark.integration
def test_each_declared_lane_runs_its_items_once_with_their_quirks(start_worker, emulator_port) -> None:  # type: ignore[no-untyped-def]
    settings = start_worker(TIERLINE_BATCH_MAX_ITEMS="100")
    items = make_items(240, "lane", flaky=6, errored=3, providers=("groq", "together", "azure"))
    publish_items(settings, items)
    ids = {item["custom_id"] for item in items}
    progress = asyncio.run(follow(settings, lambda p: ids <= p.ended(), timeout=180))
    errored = {item["custom_id"] for item in items[6:9]}
    assert set(progress.results) == ids - errored
    assert all(len(events) == 1 for events in progress.results.values())
    for item in items[:6]:  # flaky: failed once, then succeeded on the lane
        [failure] = progress.failures[item["custom_id"]]
        assert failure["retryable"] and not failure["final"]
        assert progress.results[item["custom_id"]][0]["attempt"] == 2
    for cid in errored:
        [failure] = progress.failures[cid]
        assert failure["final"] and failure["error"]["type"] == "invalid_request_error"
    prices = PriceTable.load(settings.prices_path, settings.catalogue.pricing())
    for item in items:
        for event in progress.results.get(item["custom_id"], []):
            assert event["provider"] == item["provider"] and event["batch_id"].startswith("batch_")
            # Azure's deployment is priced as the model it serves; the others from their own tables.
            priced = prices.batch_usd(item["provider"], event["model"], billed_tokens(event["usage"]))
            assert event["cost_usd"] == pytest.approx(priced) and event["cost_usd"] > 0
    azure = next(e for events in progress.results.values() for e in events if e["provider"] == "azure")
    assert azure["cost_usd"] == pytest.approx(prices.batch_usd("openai", "gpt-4o-mini",
                                                               billed_tokens(azure["usage"])))
    counts = submissions(emulator_port)
    assert {cid: counts[cid] for cid in ids} == {item["custom_id"]: 2 if n < 6 else 1 for n, item in enumerate(items)}

    succeeded = [orjson.dumps(item) for item in items if item["custom_id"] not in errored]
    asyncio.run(publish_lines(settings, succeeded))  # again: nothing new submitted
    asyncio.run(committed_to_end(settings))
    assert submissions(emulator_port) == counts
