"""The JSON Schemas in schemas/json are what the records generate, and real values fit them."""

from __future__ import annotations

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas.json_schema import SCHEMA_DIR, TOPIC_RECORDS, schema_for
from streams.local.workload import make_items


@pytest.mark.parametrize("topic", sorted(TOPIC_RECORDS))
def test_the_committed_schema_is_the_one_the_records_generate(topic: str) -> None:
    committed = orjson.loads((SCHEMA_DIR / f"{topic}.schema.json").read_bytes())
    assert committed == schema_for(topic), "run: python -m schemas.json_schema"
    Draft202012Validator.check_schema(committed)


def test_work_items_fit_the_requests_schema_and_a_missing_model_does_not() -> None:
    validator = Draft202012Validator(schema_for("requests"))
    for item in make_items(8, "schema"):
        validator.validate({**item, "my_own_field": 1})  # extra fields are allowed and ignored
    item = make_items(1, "schema")[0]
    assert not validator.is_valid({**item, "params": {"messages": []}})
    assert not validator.is_valid({**item, "provider": "Mystery Provider!"})  # no provider's name
    validator.validate({**item, "provider": "groq", "endpoint": "/chat/completions"})  # a lane a file may declare


def test_every_field_of_every_public_topic_says_what_it_means() -> None:
    from schemas.json_schema import TOPIC_RECORDS, schema_for

    def undocumented(schema: dict, where: str) -> list[str]:
        missing = []
        for name, prop in schema.get("properties", {}).items():
            if not prop.get("description"):
                missing.append(f"{where}.{name}")
            for option in [prop, *prop.get("anyOf", [])]:
                missing += undocumented(option, f"{where}.{name}")
        return missing

    assert [m for topic in TOPIC_RECORDS for m in undocumented(schema_for(topic), topic)] == []


def test_an_anthropic_custom_id_must_fit_anthropics_pattern_and_an_openai_one_need_not() -> None:
    import jsonschema

    from schemas.json_schema import schema_for

    validator = jsonschema.Draft202012Validator(schema_for("requests"))
    params = {"model": "m"}
    assert validator.is_valid({"custom_id": "order 17/a", "provider": "openai", "params": params})
    assert not validator.is_valid({"custom_id": "order 17/a", "provider": "anthropic", "params": params})
    assert validator.is_valid({"custom_id": "order-17_a", "provider": "anthropic", "params": params})
