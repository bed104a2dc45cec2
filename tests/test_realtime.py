"""The realtime tier: official SDKs call the worker's endpoint, get the provider's answer, whole or
streamed, and every call becomes a result or failure event."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from streams.settings import Settings
from tests.support import follow, slow_emulator_workers

QUESTION = [{"role": "user", "content": "Is the tide low at Haystack Rock this afternoon?"}]


@pytest.fixture(scope="module")
def worker(start_worker) -> Settings:  # type: ignore[no-untyped-def]
    return start_worker()


def through(settings: Settings) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    base = f"http://127.0.0.1:{settings.web_port}/realtime"
    return (anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="unused", max_retries=0),
            openai.OpenAI(base_url=f"{base}/openai/v1", api_key="unused", max_retries=0))


def test_sdk_calls_through_the_endpoint_are_answered_whole_and_streamed(worker: Settings) -> None:
    claude, gpt = through(worker)
    whole = claude.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=QUESTION,
                                   extra_headers={"tierline-custom-id": "rt-claude-whole",
                                                  "tierline-metadata": '{"session": "s-1"}'})
    assert whole.content[0].text.startswith("Answer to: Is the tide low")
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=QUESTION,
                                extra_headers={"tierline-custom-id": "rt-claude-streamed"}) as stream:
        pieces = list(stream.text_stream)
    assert len(pieces) > 3 and "".join(pieces) == whole.content[0].text

    chunks = list(gpt.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True,
                                              stream_options={"include_usage": True},
                                              extra_headers={"tierline-custom-id": "rt-gpt-streamed"}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Answer to: Is the tide low") and chunks[-1].usage.completion_tokens > 0
    # Not asked for by the client, the usage is asked for by the worker: the call's cost is known.
    list(gpt.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True,
                                     extra_headers={"tierline-custom-id": "rt-gpt-no-usage-asked"}))
    vectors = gpt.embeddings.create(model="text-embedding-3-small", input="tide",
                                    extra_headers={"tierline-custom-id": "rt-embedding"})
    assert len(vectors.data[0].embedding) == 8

    ids = {"rt-claude-whole", "rt-claude-streamed", "rt-gpt-streamed", "rt-gpt-no-usage-asked", "rt-embedding"}
    progress = asyncio.run(follow(worker, lambda p: ids <= set(p.results), timeout=60))
    events = {cid: progress.results[cid][0] for cid in ids}
    assert all(e["tier"] == "realtime" and e["batch_id"] is None for e in events.values())
    assert all(e["cost_usd"] == e["realtime_usd"] > 0 for e in events.values())  # full price
    assert events["rt-claude-whole"]["metadata"] == {"session": "s-1"}
    # A streamed call is recorded as the whole answer it amounts to.
    streamed = events["rt-claude-streamed"]["response"]
    assert streamed["content"][0]["text"] == whole.content[0].text and streamed["stop_reason"] == "end_turn"
    assert streamed["usage"]["output_tokens"] == whole.usage.output_tokens
    assert events["rt-gpt-streamed"]["response"]["choices"][0]["message"]["content"] == text


def test_a_streamed_call_is_recorded_as_the_body_the_same_call_returns_whole(worker: Settings) -> None:
    """Tool use with its input, thinking with its signature, citations; OpenAI's tool calls and refusal."""
    claude, gpt = through(worker)
    tide = {"name": "tide_table", "description": "Tide times", "input_schema": {"type": "object"}}
    asking = [{"role": "user", "content": "Low tide at Haystack Rock? #emulate:thinking #emulate:citations "
                                          "#emulate:tool-use"}]
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=asking, tools=[tide],  # type: ignore[list-item]
                           extra_headers={"tierline-custom-id": "rt-tool-whole"})
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=256, messages=asking, tools=[tide],  # type: ignore[list-item]
                                extra_headers={"tierline-custom-id": "rt-tool-streamed"}) as stream:
        seen = stream.get_final_message()
    function = {"type": "function", "function": {"name": "tide_table", "parameters": {"type": "object"}}}
    for shape in ("tool-use", "refusal"):
        words = [{"role": "user", "content": f"Low tide at Haystack Rock? #emulate:{shape}"}]
        gpt.chat.completions.create(model="gpt-4o-mini", messages=words, tools=[function],  # type: ignore[list-item]
                                    extra_headers={"tierline-custom-id": f"rt-gpt-{shape}-whole"})
        list(gpt.chat.completions.create(model="gpt-4o-mini", messages=words, tools=[function], stream=True,  # type: ignore[list-item]
                                         extra_headers={"tierline-custom-id": f"rt-gpt-{shape}-streamed"}))
    pairs = [("rt-tool-whole", "rt-tool-streamed"), ("rt-gpt-tool-use-whole", "rt-gpt-tool-use-streamed"),
             ("rt-gpt-refusal-whole", "rt-gpt-refusal-streamed")]
    progress = asyncio.run(follow(worker, lambda p: {c for pair in pairs for c in pair} <= set(p.results),
                                  timeout=60))
    for whole_id, streamed_id in pairs:
        whole, streamed = (progress.results[cid][0] for cid in (whole_id, streamed_id))
        assert without_ids(streamed["response"]) == without_ids(whole["response"])
        assert streamed["cost_usd"] == whole["cost_usd"] > 0
    recorded = progress.results["rt-tool-streamed"][0]["response"]
    assert [block["type"] for block in recorded["content"]] == ["thinking", "text", "tool_use"]
    assert recorded["content"][0]["signature"] and recorded["content"][1]["citations"]
    assert recorded["content"][2]["input"]["limit"] == 3 and recorded["stop_reason"] == "tool_use"
    assert recorded == seen.to_dict(mode="json")  # what the client's own SDK made of the stream
    call = progress.results["rt-gpt-tool-use-streamed"][0]["response"]["choices"][0]["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"])["limit"] == 3


def without_ids(doc: object) -> object:
    """A response with the ids and times that differ between two calls blanked."""
    if isinstance(doc, dict):
        return {key: "~" if key in ("id", "created") else without_ids(value) for key, value in doc.items()}
    if isinstance(doc, list):
        return [without_ids(value) for value in doc]
    return doc


def test_a_provider_error_reaches_the_client_as_it_was_and_is_recorded_as_a_failure(worker: Settings) -> None:
    claude, gpt = through(worker)
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=8,
                               messages=[{"role": "user", "content": "#emulate:errored"}],
                               extra_headers={"tierline-custom-id": "rt-refused"})
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        gpt.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "#emulate:errored"}],
                                    extra_headers={"tierline-custom-id": "rt-refused-gpt"})
    ids = {"rt-refused", "rt-refused-gpt"}
    progress = asyncio.run(follow(worker, lambda p: ids <= set(p.failures), timeout=60))
    for cid in ids:
        [failure] = progress.failures[cid]
        assert failure["tier"] == "realtime" and failure["final"] and not failure["retryable"]
        assert failure["error"]["type"] == "invalid_request_error"


def test_a_client_hanging_up_mid_stream_leaves_a_failure_event(broker_port: int, s3_port: int,
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    """The provider's stream is closed with the client's, and the call is not left unrecorded."""
    with slow_emulator_workers(broker_port, s3_port, tmp_path_factory, 1, "--token-ms", "100") as pool:
        env = pool.env()
        proc = pool.start(env)
        settings = Settings.from_env({**env, "TIERLINE_WEB_PORT": str(proc.web_port)})  # type: ignore[attr-defined]
        claude, _ = through(settings)
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=QUESTION,
                                    extra_headers={"tierline-custom-id": "rt-hung-up"}) as stream:
            first = next(iter(stream.text_stream))  # one piece of a stream two seconds long, then away
        assert first
        progress = asyncio.run(follow(settings, lambda p: "rt-hung-up" in p.failures, timeout=60))
        [failure] = progress.failures["rt-hung-up"]
        assert failure["error"]["type"] == "client_disconnected" and failure["final"]
        assert not progress.results["rt-hung-up"]


def test_with_keys_set_only_a_caller_with_one_is_served_and_a_refusal_is_recorded_nowhere(  # type: ignore[no-untyped-def]
        start_worker) -> None:
    settings = start_worker(TIERLINE_REALTIME_KEYS="team-a-key, team-b-key", TIERLINE_WEB_READ_TIMEOUT_S="1")
    base = f"http://127.0.0.1:{settings.web_port}/realtime"
    claude = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="team-b-key", max_retries=0)
    gpt = openai.OpenAI(base_url=f"{base}/openai/v1", api_key="team-a-key", max_retries=0)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=QUESTION,
                           extra_headers={"tierline-custom-id": "rt-keyed-claude"})
    gpt.chat.completions.create(model="gpt-4o-mini", messages=QUESTION,
                                extra_headers={"tierline-custom-id": "rt-keyed-gpt"})
    stranger = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="sk-ant-guessed", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as refused:
        stranger.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=QUESTION,
                                 extra_headers={"tierline-custom-id": "rt-stranger"})
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError) as wrong:
        openai.OpenAI(base_url=f"{base}/openai/v1", api_key="team-c-key", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, extra_headers={"tierline-custom-id": "rt-wrong"})
    assert wrong.value.code == "invalid_api_key"
    unkeyed = urllib.request.Request(f"{base}/openai/v1/chat/completions", method="POST",
                                     data=json.dumps({"model": "gpt-4o-mini", "messages": QUESTION}).encode(),
                                     headers={"content-type": "application/json", "tierline-custom-id": "rt-unkeyed"})
    with pytest.raises(urllib.error.HTTPError) as no_key:
        urllib.request.urlopen(unkeyed, timeout=10)
    assert no_key.value.code == 401
    events = asyncio.run(follow(settings, lambda p: {"rt-keyed-claude", "rt-keyed-gpt"} <= set(p.results),
                                timeout=30))
    assert not {"rt-stranger", "rt-wrong", "rt-unkeyed"} & (set(events.results) | set(events.failures))

    # A client that sends its headers and then only part of its body is answered 408 and let go.
    with socket.create_connection(("127.0.0.1", settings.web_port), timeout=10) as slow:
        slow.sendall(b"POST /realtime/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: team-a-key\r\n"
                     b"content-type: application/json\r\ncontent-length: 500\r\n\r\n{\"model\": ")
        answer = slow.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer

    # Forty clients that never finish their headers are let go, and the server answers others meanwhile.
    stalled = [socket.create_connection(("127.0.0.1", settings.web_port), timeout=20) for _ in range(40)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /realtime/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: te")
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/livez", timeout=10) as alive:
            assert alive.status == 200
        assert all(sock.recv(4096) == b"" for sock in stalled)  # closed by the server, nothing answered
    finally:
        for sock in stalled:
            sock.close()


def test_listening_beyond_this_machine_without_keys_the_endpoint_is_off_and_says_why(  # type: ignore[no-untyped-def]
        start_worker) -> None:
    settings = start_worker(TIERLINE_WEB_HOST="0.0.0.0")
    base = f"http://127.0.0.1:{settings.web_port}"
    claude = anthropic.Anthropic(base_url=f"{base}/realtime/anthropic", api_key="anything", max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as off:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=QUESTION)
    assert off.value.status_code == 503 and "TIERLINE_REALTIME_KEYS" in str(off.value)
    with urllib.request.urlopen(base + "/livez", timeout=10) as answer:
        assert answer.status == 200 and json.loads(answer.read()) == {"alive": True}
    deadline = time.monotonic() + 60
    while True:  # ready once it has joined its group and loaded its state
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=10) as answer:
                assert json.loads(answer.read())["ready"] is True
                break
        except urllib.error.HTTPError as not_yet:
            assert not_yet.code == 503 and time.monotonic() < deadline
            time.sleep(0.5)
    with urllib.request.urlopen(base + "/health", timeout=10) as answer:  # the older name of /readyz
        assert answer.status == 200


def test_by_default_the_web_server_listens_on_loopback_only(worker: Settings) -> None:
    outside = next((address for address in _own_addresses() if not address.startswith("127.")), None)
    if outside is None:
        pytest.skip("this machine has no address but loopback")
    with socket.socket() as sock:
        sock.settimeout(3)
        assert sock.connect_ex((outside, worker.web_port)) != 0
    with socket.create_connection(("127.0.0.1", worker.web_port), timeout=3):
        pass


def _own_addresses() -> list[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: it only picks the outgoing interface
            return [probe.getsockname()[0]]
        except OSError:
            return []
