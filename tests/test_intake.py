"""The intake both consumer agents read through: commit pacing and the rebalance protocol, in-process.

A fake consumer stands in for aiokafka's and a small agent records what the intake asks of it;
the commit interval runs on an injected clock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from streams.kafka.intake import Intake
from tests.clock import Clock
from tests.fakes import FakeConsumer, FakePublisher, NoCrashes

A0, A1 = TopicPartition("in", 0), TopicPartition("in", 1)


class Recorder:
    """An agent that holds every message whose value is b"hold" until told, and notes each call."""

    def __init__(self, consumer: FakeConsumer) -> None:
        self.calls: list[Any] = []
        self.held: list[tuple[TopicPartition, int]] = []
        self.publisher = FakePublisher()
        self.intake: Intake | None = None
        self._consumer = consumer

    def take(self, tp: TopicPartition, message: ConsumerRecord) -> None:
        assert self.intake is not None
        if message.value == b"boom":
            raise ValueError("cannot handle this one")
        if message.value == b"hold":
            self.intake.offsets.hold(tp, message.offset)
            self.held.append((tp, message.offset))

    def release_all(self) -> None:
        assert self.intake is not None
        for tp, offset in self.held:
            self.intake.offsets.release(tp, offset)
        self.held.clear()

    async def flush(self) -> None:
        assert self.intake is not None
        letters = self.intake.take_letters()
        self.calls.append(("flush", len(letters), len(self._consumer.commits)))
        await self.publisher.publish(letters)

    async def hand_back(self, revoked: set[TopicPartition]) -> None:
        self.calls.append(("hand_back", sorted(tp.partition for tp in revoked)))
        self.release_all()  # what it held is done with before the commit that hands the partitions over

    async def take_over(self, assigned: set[TopicPartition]) -> None:
        self.calls.append(("take_over", sorted(tp.partition for tp in assigned)))


@pytest.fixture
async def setup() -> tuple[Intake, Recorder, FakeConsumer, Clock]:
    consumer, clock = FakeConsumer(), Clock(100.0)
    agent = Recorder(consumer)
    agent.intake = intake = Intake(consumer, ["in"], agent, NoCrashes(), "dead", commit_interval_s=1.0, clock=clock)
    await intake.start()
    await consumer.rebalance([A0, A1])
    return intake, agent, consumer, clock


async def round_(intake: Intake, agent: Recorder) -> None:
    intake.each(await intake.read(0, 100), agent.take)
    await intake.commit()


async def test_an_offset_is_committed_only_past_what_is_done(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    for value in (b"a", b"hold", b"c"):
        consumer.put(A0, value)
    await round_(intake, agent)
    assert consumer.group[A0] == 1  # the held message and everything after it come again after a crash
    agent.release_all()
    clock.now += 1.0
    await intake.commit()
    assert consumer.group[A0] == 3


async def test_commits_are_paced_by_the_interval_unless_asked_for_sooner(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    consumer.put(A0, b"a")
    await round_(intake, agent)
    commits = len(consumer.commits)
    consumer.put(A0, b"b")
    clock.now += 0.5
    await round_(intake, agent)
    assert len(consumer.commits) == commits and consumer.group[A0] == 1  # within the interval: waits
    intake.commit_soon()
    await intake.commit()
    assert len(consumer.commits) == commits + 1 and consumer.group[A0] == 2


async def test_nothing_is_committed_where_nothing_moved(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    consumer.put(A0, b"a")
    await round_(intake, agent)
    commits = len(consumer.commits)
    for _ in range(5):
        clock.now += 2.0
        await round_(intake, agent)
    assert len(consumer.commits) == commits


async def test_a_dead_letter_is_published_before_the_offset_past_it_is_committed(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    consumer.put(A1, b"boom")
    commits_before = len(consumer.commits)
    await round_(intake, agent)
    letters = agent.publisher.on("dead")
    assert [(letter["reason"], letter["offset"]) for letter in letters] == [("unprocessable", 0)]
    assert letters[0]["message"] == "ValueError: cannot handle this one"
    # The flush that published the letter came before the commit past it.
    assert ("flush", 1, commits_before) in agent.calls and consumer.group[A1] == 1


async def test_a_message_that_crashed_workers_is_set_aside_unhandled(setup: Any) -> None:
    _, agent, consumer, clock = setup
    intake = Intake(consumer, ["in"], agent, NoCrashes(at=lambda at: at == ("in", 0, 1)), "dead", clock=clock)
    agent.intake = intake
    await intake.start()
    await consumer.rebalance([A0])
    consumer.put(A0, b"hold")
    consumer.put(A0, b"hold")
    await round_(intake, agent)
    assert agent.held == [(A0, 0)]
    assert [letter["reason"] for letter in agent.publisher.on("dead")] == ["crashed_worker"]


async def test_a_rebalance_hands_back_then_commits_what_is_done_then_takes_over(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    consumer.put(A0, b"a")
    consumer.put(A0, b"hold")
    await round_(intake, agent)
    assert consumer.group[A0] == 1
    agent.calls.clear()
    await consumer.rebalance([A1])
    names = [call[0] for call in agent.calls]
    assert names == ["hand_back", "flush", "take_over"]
    assert agent.calls[0] == ("hand_back", [0, 1]) and agent.calls[-1] == ("take_over", [1])
    assert consumer.group[A0] == 2  # released in hand_back, committed before the partition left
    assert intake.ready


async def test_records_of_new_partitions_wait_until_the_agent_has_taken_them_over(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    consumer.put(A1, b"a")
    gate = asyncio.Event()
    take_over = agent.take_over

    async def slow_take_over(assigned: set[TopicPartition]) -> None:
        await gate.wait()
        await take_over(assigned)

    agent.take_over = slow_take_over  # type: ignore[method-assign]
    rebalancing = asyncio.create_task(consumer.rebalance([A1]))
    reading = asyncio.create_task(intake.read(0, 100))
    await asyncio.sleep(0.01)
    assert not reading.done() and not intake.ready  # fetched, but held back while the agent takes over
    gate.set()
    await rebalancing
    assert [r.value for r in (await reading)[A1]] == [b"a"]


async def test_records_fetched_after_a_rebalance_within_the_fetch_are_kept(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    consumer.put(A0, b"a")
    fetch = consumer.getmany

    async def join_then_fetch(**kwargs: Any) -> Any:
        await consumer.rebalance([A0, A1])  # as the first getmany joins the group
        return await fetch(**kwargs)

    consumer.getmany = join_then_fetch  # type: ignore[method-assign]
    assert [r.value for r in (await intake.read(0, 100))[A0]] == [b"a"]


async def test_reading_pauses_and_resumes_on_the_agents_word(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    intake.hold_back(True)
    consumer.put(A0, b"a")
    assert await intake.read(0, 100) == {}
    intake.hold_back(False)
    assert [r.value for r in (await intake.read(0, 100))[A0]] == [b"a"]


async def test_lag_counts_what_is_past_the_groups_committed_offset(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    for value in (b"a", b"hold", b"c", b"d"):
        consumer.put(A0, value)
    consumer.put(A1, b"e")
    await round_(intake, agent)
    assert intake.lag() == {"in": 3}


async def test_stop_commits_what_is_done(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    consumer.put(A0, b"a")
    intake.each(await intake.read(0, 100), agent.take)
    await intake.stop()
    assert consumer.group[A0] == 1 and consumer.stopped
    assert consumer.commits[-1] == {A0: 1}


async def test_no_offset_is_committed_past_what_the_partition_holds(setup: Any) -> None:
    """A broker back without its data (memory storage): committing what was read before would have the
    group skip the next records written to the partition."""
    intake, agent, consumer, clock = setup
    for value in (b"a", b"hold", b"c"):
        consumer.put(A0, value)
    await round_(intake, agent)
    assert consumer.group[A0] == 1
    consumer.logs[A0] = consumer.logs[A0][:1]  # the broker restarted and holds one record
    agent.release_all()
    clock.now += 1.0
    await intake.commit()
    assert consumer.group[A0] == 1
