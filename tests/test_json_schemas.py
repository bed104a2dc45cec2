"""The JSON Schemas in schemas/json are what the records generate, and real values fit them."""

from __future__ import annotations

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas.json_schema import SCHEMA_DIR, TOPIC_RECORDS, schema_for
from streams.workload import make_items


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
    assert not validator.is_valid({**item, "provider": "mystery"})


def validate_events(topic: str, events: list[dict]) -> None:
    validator = Draft202012Validator(schema_for(topic))
    for event in events:
        validator.validate(event)
