"""Sample work items: the demo's shipped workload and the tests' and benchmark's inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

__all__ = ["make_items", "cached_items", "bad_lines", "write_workload", "DEMO_WORKLOAD", "PROVIDERS", "LANES",
           "TEAMS"]

DEMO_WORKLOAD = Path(__file__).parent.parent / "data" / "demo_workload.jsonl"

TOPICS = ("a product description", "a support ticket", "a news article", "a recipe", "a code review")


def _prompt(i: int, marker: str) -> str:
    text = f"Summarise {TOPICS[i % len(TOPICS)]} number {i} in one sentence."
    return f"{text} {marker}" if marker else text


PROVIDERS = ("anthropic", "openai", "bedrock")
#: The batch lanes the demo and the batch-tier tests mix: the built-in ones and one declared lane.
LANES = (*PROVIDERS, "gemini", "groq")
#: The demo's teams, in its items' metadata: ``tierline report --by metadata.team``.
TEAMS = ("growth", "search", "support")
#: A long instruction many requests share: the prompt cache's case (about 1,900 tokens).
STYLE_GUIDE = " ".join(f"Rule {n}: write short sentences, plain words, numbers as digits, no jargon."
                       for n in range(100))
BEDROCK_CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
BEDROCK_NOVA = "us.amazon.nova-lite-v1:0"  # a cross-region inference profile, called through Converse
GEMINI_MODEL = "gemini-2.5-flash"
#: The model (an Azure deployment) and endpoint of each lane ``streams/data/providers.example.toml`` declares.
LANE_MODELS = {"groq": ("llama-3.1-8b-instant", "/v1/chat/completions"),
               "together": ("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "/v1/chat/completions"),
               "azure": ("gpt-4o-mini-batch", "/chat/completions")}


def make_items(n: int, prefix: str = "item", flaky: int = 0, errored: int = 0,
               providers: tuple[str, ...] = PROVIDERS, expired: int = 0) -> list[dict[str, Any]]:
    """``n`` valid items spread over the providers; the first few carry fault markers (the emulator's
    ``#emulate:flaky``, then ``errored``, then ``expired``)."""
    items = []
    for i in range(n):
        provider = providers[i % len(providers)]
        marker = "#emulate:flaky" if i < flaky else "#emulate:errored" if i < flaky + errored else \
            "#emulate:expired" if i < flaky + errored + expired else ""
        messages = [{"role": "user", "content": _prompt(i, marker)}]
        custom_id = f"{prefix}-{i:06d}"
        if provider == "bedrock":
            items.append(_bedrock_item(custom_id, i, _prompt(i, marker)))
        elif provider == "gemini":
            params: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": _prompt(i, marker)}]}],
                      "generationConfig": {"maxOutputTokens": 256}}
            items.append({"custom_id": custom_id, "provider": "gemini", "model": GEMINI_MODEL, "params": params,
                          "metadata": {"n": i}})
        elif provider == "anthropic":
            params = {"model": "claude-haiku-4-5", "max_tokens": 256, "messages": messages}
            items.append({"custom_id": custom_id, "provider": "anthropic", "params": params,
                          "metadata": {"n": i}})
        elif provider in LANE_MODELS:  # a declared lane of the example providers file
            model, endpoint = LANE_MODELS[provider]
            params = {"model": model, "max_tokens": 256, "messages": messages}
            items.append({"custom_id": custom_id, "provider": provider, "endpoint": endpoint, "params": params,
                          "metadata": {"n": i}})
        else:
            model = "gpt-4o-mini" if i % 4 else "gpt-4.1-mini"
            params = {"model": model, "max_tokens": 256, "messages": messages}
            items.append({"custom_id": custom_id, "provider": "openai", "endpoint": "/v1/chat/completions",
                          "params": params, "metadata": {"n": i}})
    return items


def cached_items(n: int, prefix: str = "cached") -> list[dict[str, Any]]:
    """``n`` items that share ``STYLE_GUIDE`` before their own question, half Anthropic (the guide marked
    ``cache_control``) and half OpenAI (which caches a long prefix on its own)."""
    items = []
    for i in range(n):
        question = {"role": "user", "content": _prompt(i, "")}
        if i % 2 == 0:
            params: dict[str, Any] = {
                "model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [question],
                "system": [{"type": "text", "text": STYLE_GUIDE, "cache_control": {"type": "ephemeral"}}]}
            items.append({"custom_id": f"{prefix}-{i:06d}", "provider": "anthropic", "params": params,
                          "metadata": {"n": i}})
        else:
            params = {"model": "gpt-4o-mini", "max_tokens": 256,
                      "messages": [{"role": "system", "content": STYLE_GUIDE}, question]}
            items.append({"custom_id": f"{prefix}-{i:06d}", "provider": "openai", "endpoint": "/v1/chat/completions",
                          "params": params, "metadata": {"n": i}})
    return items


def _bedrock_item(custom_id: str, i: int, prompt: str) -> dict[str, Any]:
    """Claude through InvokeModel (its Bedrock body), or every fourth one Nova through Converse."""
    params: dict[str, Any]
    if i % 4 == 2:
        params = {"messages": [{"role": "user", "content": [{"text": prompt}]}], "inferenceConfig": {"maxTokens": 256}}
        return {"custom_id": custom_id, "provider": "bedrock", "model": BEDROCK_NOVA, "invocation": "converse",
                "params": params, "metadata": {"n": i}}
    params = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256,
              "messages": [{"role": "user", "content": prompt}]}
    return {"custom_id": custom_id, "provider": "bedrock", "model": BEDROCK_CLAUDE, "params": params,
            "metadata": {"n": i}}


def bad_lines(prefix: str = "bad") -> dict[str, bytes]:
    """One message per kind of bad input, by the dead-letter reason it must get."""
    ok_params = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    dumps = orjson.dumps
    return {
        "invalid_json": b'{"custom_id": "' + prefix.encode() + b'-json", "provider": ',
        "not_an_object": dumps([prefix, "not", "an", "object"]),
        "missing_custom_id": dumps({"provider": "anthropic", "params": ok_params}),
        "invalid_custom_id": dumps({"custom_id": f"{prefix} has spaces!", "provider": "anthropic",
                                    "params": ok_params}),
        "unknown_provider": dumps({"custom_id": f"{prefix}-provider", "provider": "mystery", "params": ok_params}),
        "missing_model": dumps({"custom_id": f"{prefix}-model", "provider": "openai",
                                "params": {"messages": []}}),
        "unsupported_endpoint": dumps({"custom_id": f"{prefix}-endpoint", "provider": "openai",
                                       "endpoint": "/v1/images", "params": {"model": "gpt-4o-mini"}}),
        "unsupported_invocation": dumps({"custom_id": f"{prefix}-invocation", "provider": "bedrock",
                                         "model": BEDROCK_CLAUDE, "invocation": "stream", "params": ok_params}),
    }


def write_workload(path: Path) -> None:
    """The demo's workload: 2,400 items over the batch lanes (the built-in ones and Groq, declared), a few
    flaky, a few errored, 40 sharing a cached prompt, and 8 bad lines (2,448 in all); each item's metadata
    names one of three teams."""
    items = make_items(2_400, "demo", flaky=12, errored=6, providers=LANES) + cached_items(40, "demo-cached")
    for item in items:
        item["metadata"]["team"] = TEAMS[item["metadata"]["n"] % len(TEAMS)]
    lines = [orjson.dumps(item) for item in items]
    lines += list(bad_lines("demo-bad").values())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    write_workload(DEMO_WORKLOAD)
