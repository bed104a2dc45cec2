import orjson
import pytest

from core.validation import Accepted, Rejected, request_of, validate
from streams.local.workload import bad_lines, make_items
from streams.settings import Settings

caps = Settings().catalogue  # every built-in provider, with the default caps


@pytest.mark.parametrize("reason,line", sorted(bad_lines().items()))
def test_each_kind_of_bad_input_gets_its_own_reason(reason: str, line: bytes) -> None:
    verdict = validate(line, caps)
    assert isinstance(verdict, Rejected)
    assert verdict.reason == reason
    assert verdict.message


def test_valid_items_get_their_provider_line_and_group() -> None:
    anthropic, openai = make_items(2)
    a = validate(orjson.dumps(anthropic), caps)
    o = validate(orjson.dumps(openai), caps)
    assert isinstance(a, Accepted) and isinstance(o, Accepted)
    assert orjson.loads(a.line) == {"custom_id": anthropic["custom_id"], "params": anthropic["params"]}
    assert orjson.loads(o.line)["url"] == "/v1/chat/completions"
    assert orjson.loads(o.line)["body"] == openai["params"]
    assert a.group.provider == "anthropic" and a.group.model is None
    assert o.group == ("openai", "/v1/chat/completions", openai["params"]["model"])


def test_openai_endpoint_defaults_to_chat_completions() -> None:
    item = {"custom_id": "x", "provider": "openai", "params": {"model": "gpt-4o-mini", "messages": []}}
    verdict = validate(orjson.dumps(item), caps)
    assert isinstance(verdict, Accepted) and verdict.item.endpoint == "/v1/chat/completions"


def test_openai_accepts_ids_anthropic_would_refuse() -> None:
    item = {"custom_id": "order 42/line 7", "provider": "openai", "params": {"model": "gpt-4o-mini", "messages": []}}
    assert isinstance(validate(orjson.dumps(item), caps), Accepted)
    item["provider"] = "anthropic"
    assert validate(orjson.dumps(item), caps).reason == "invalid_custom_id"  # type: ignore[union-attr]


def test_an_item_larger_than_a_whole_batch_is_refused() -> None:
    small = Settings(batch_max_bytes=200).catalogue
    item = make_items(1)[0]
    item["params"]["messages"][0]["content"] = "x" * 500
    verdict = validate(orjson.dumps(item), small)
    assert isinstance(verdict, Rejected) and verdict.reason == "item_too_large"


def test_metadata_must_be_an_object() -> None:
    item = make_items(1)[0] | {"metadata": ["a"]}
    assert validate(orjson.dumps(item), caps).reason == "invalid_metadata"  # type: ignore[union-attr]


def test_a_reprocess_name_keys_idempotency_within_its_re_run() -> None:
    item = {"custom_id": "a-1", "provider": "anthropic", "params": {"model": "m", "max_tokens": 1, "messages": []}}
    plain = validate(orjson.dumps(item), caps)
    rerun = validate(orjson.dumps({**item, "reprocess": "fix-1"}), caps)
    assert isinstance(plain, Accepted) and isinstance(rerun, Accepted)
    assert plain.item.run_key == "a-1" and rerun.item.run_key == ("a-1", "fix-1")
    assert plain.line == rerun.line  # the provider sees the same request
    for bad in ("", 7, "x" * 65):
        verdict = validate(orjson.dumps({**item, "reprocess": bad}), caps)
        assert isinstance(verdict, Rejected) and verdict.reason == "invalid_reprocess"


def test_a_bedrock_item_becomes_a_record_of_its_models_job() -> None:
    claude = make_items(1, providers=("bedrock",))[0]
    a = validate(orjson.dumps(claude), caps)
    assert isinstance(a, Accepted)
    assert orjson.loads(a.line) == {"recordId": claude["custom_id"], "modelInput": claude["params"]}
    assert a.group == ("bedrock", "InvokeModel", claude["model"])
    converse = next(i for i in make_items(12, providers=("bedrock",)) if i.get("invocation") == "converse")
    c = validate(orjson.dumps(converse), caps)
    assert isinstance(c, Accepted) and c.group == ("bedrock", "Converse", converse["model"])
    assert c.item.model == converse["model"] and c.item.invocation == "converse"


def test_a_gemini_item_becomes_a_keyed_line_of_its_models_job() -> None:
    item = make_items(1, providers=("gemini",))[0]
    a = validate(orjson.dumps(item), caps)
    assert isinstance(a, Accepted) and a.group == ("gemini", None, item["model"])
    assert orjson.loads(a.line) == {"key": item["custom_id"], "request": item["params"]}
    assert request_of(orjson.loads(a.line)) == (item["custom_id"], item["params"], None)
    for doc, reason in (({**item, "model": None}, "missing_model"),
                        ({**item, "model": "gemini 2.5"}, "missing_model"),
                        ({**item, "params": {"contents": []}}, "invalid_params"),
                        ({**item, "params": {"contents": [{"parts": "hi"}]}}, "invalid_params"),
                        ({**item, "params": {**item["params"], "generationConfig": {"maxOutputTokens": "9"}}},
                         "invalid_params")):
        verdict = validate(orjson.dumps(doc), caps)
        assert isinstance(verdict, Rejected) and verdict.reason == reason, (doc, verdict)


def test_each_providers_line_gives_its_request_back() -> None:
    for item in make_items(3):
        verdict = validate(orjson.dumps(item), caps)
        assert isinstance(verdict, Accepted)
        assert request_of(orjson.loads(verdict.line)) == (item["custom_id"], item["params"], verdict.item.endpoint)


def test_bedrock_items_may_ask_for_any_tier_keeping_their_model_and_invocation() -> None:
    for item in make_items(3, providers=("bedrock",)):
        for tier in ("realtime", "async", "batch"):
            verdict = validate(orjson.dumps({**item, "tier": tier}), caps)
            assert isinstance(verdict, Accepted) and verdict.item.tier == tier
            assert (verdict.item.model, verdict.item.invocation) == (item["model"], item.get("invocation", "invoke"))
