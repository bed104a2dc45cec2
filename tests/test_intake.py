"""The intake both consumer agents read through: commit pacing, the rebalance protocol and fencing, in-process.

A fake consumer stands in for aiokafka's and a small agent records what the intake asks of it;
the commit interval runs on an injected clock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from streams.kafka.fence import Fence
from streams.kafka.intake import Intake, _Listener
from streams.ownership import Ownership
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


# -- fencing: acting only on partitions the broker lately confirmed ---------------------------------

@pytest.fixture
async def fenced() -> tuple[Intake, Recorder, FakeConsumer, Clock]:
    """An intake whose fence runs on the test's clock: confirmed within 2 s, lost after 10 s unconfirmed.
    Not started: the test looks at the fence itself (``watch_fence``), where the worker's task would."""
    consumer, clock = FakeConsumer(), Clock(100.0)
    agent = Recorder(consumer)
    fence = Fence(within_s=2.0, lost_after_s=10.0, clock=clock)
    agent.intake = intake = Intake(consumer, ["in"], agent, NoCrashes(), "dead", commit_interval_s=1.0, clock=clock,
                                   fence=fence)
    consumer.subscribe(["in"], listener=_Listener(intake))
    await consumer.rebalance([A0, A1])
    return intake, agent, consumer, clock


def test_a_fence_is_fresh_within_its_bound_due_after_a_third_and_lost_past_the_session() -> None:
    clock = Clock(0.0)
    fence = Fence(within_s=3.0, lost_after_s=10.0, clock=clock)
    assert not fence.fresh and fence.due and not fence.lost  # never confirmed: nothing to act on, nothing lost
    fence.confirm()
    clock.now = 0.9
    assert fence.fresh and not fence.due
    clock.now = 1.0
    assert fence.fresh and fence.due  # asked again before it goes stale
    clock.now = 3.1
    assert not fence.fresh and not fence.lost
    clock.now = 10.1
    assert fence.lost
    fence.withdraw()
    assert not fence.fresh and not fence.lost


async def test_nothing_is_committed_without_a_fresh_confirmation(fenced: Any) -> None:
    intake, agent, consumer, clock = fenced
    consumer.put(A0, b"a")
    clock.now += 2.5  # the last confirmation (the assignment) is too old: maybe cut off from the group
    await round_(intake, agent)
    assert consumer.commits == []
    await intake.confirm()  # the broker answers: still ours
    clock.now += 1.0
    await intake.commit()
    assert consumer.group[A0] == 1


async def test_a_commit_refused_by_the_group_gives_the_partitions_up_at_once_without_a_crash(fenced: Any) -> None:
    intake, agent, consumer, clock = fenced
    consumer.put(A0, b"hold")  # in an open batch, say
    await round_(intake, agent)
    agent.calls.clear()
    consumer.refuse_commits = CommitFailedError("the group has rebalanced")
    agent.release_all()
    clock.now += 1.0
    await intake.commit()  # raised nothing
    assert agent.calls[-1] == ("hand_back", [0, 1]) and not intake.ready
    assert not intake.fence.fresh
    consumer.refuse_commits = None
    await consumer.rebalance([A1])  # aiokafka joins again: the group's word, as for any rebalance
    assert intake.ready and agent.calls[-1] == ("take_over", [1])
    assert consumer.commits == []  # given up, nothing of the lost generation was committed


async def test_partitions_unconfirmed_past_the_session_are_given_up_and_read_again_if_still_ours(fenced: Any) -> None:
    intake, agent, consumer, clock = fenced
    for value in (b"a", b"hold", b"c"):
        consumer.put(A0, value)
    await round_(intake, agent)
    assert consumer.group[A0] == 1
    consumer.refuse_commits = KafkaConnectionError()  # cut off: no answer
    clock.now += 5.0
    await intake.watch_fence()
    assert intake.ready  # unconfirmed, not yet lost
    clock.now += 6.0
    await intake.watch_fence()
    assert not intake.ready and agent.calls[-1] == ("hand_back", [0, 1])
    agent.held.clear()  # what was held is dropped with the generation
    consumer.refuse_commits = None  # the link is back and the group never moved on
    await intake.watch_fence()
    assert intake.ready and agent.calls[-1] == ("take_over", [0, 1])
    records = await intake.read(0, 100)
    assert [r.offset for r in records[A0]] == [1, 2]  # from the last commit: nothing skipped
    assert consumer.group[A0] == 1


async def test_stop_cut_off_from_the_broker_ends_without_committing(fenced: Any) -> None:
    intake, agent, consumer, clock = fenced
    consumer.put(A0, b"a")
    intake.each(await intake.read(0, 100), agent.take)
    clock.now += 12.0
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    consumer.stop = hangs  # type: ignore[method-assign]
    await intake.stop(timeout_s=0.05)
    assert consumer.commits == []


async def test_acting_waits_for_a_confirmation_and_not_for_a_job_handed_back_meanwhile() -> None:
    clock = Clock(0.0)
    ownership = Ownership(Fence(within_s=2.0, lost_after_s=10.0, clock=clock))
    ownership.fence.confirm()
    clock.now = 5.0
    acted: list[bool] = []

    async def act(generation: int) -> None:
        async with ownership.acting(generation) as ours:
            acted.append(ours)

    waiting = asyncio.create_task(act(ownership.generation))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # no fresh confirmation: it waits, outside the critical section
    ownership.fence.confirm()
    await waiting
    assert acted == [True]
    clock.now = 10.0
    stale = asyncio.create_task(act(ownership.generation))
    await asyncio.sleep(0.01)
    await ownership.hand_back()  # a rebalance does not wait for a job still waiting for the fence
    await asyncio.wait_for(stale, 2.0)
    assert acted == [True, False]


async def test_a_member_with_no_partitions_stays_ready_unconfirmed(fenced: Any) -> None:
    intake, agent, consumer, clock = fenced
    await consumer.rebalance([])  # more workers than partitions: nothing to commit, so nothing confirms
    clock.now += 30.0
    await intake.watch_fence()
    assert intake.ready and agent.calls[-1] == ("take_over", [])


async def test_partitions_given_up_while_paused_are_fetched_again_once_taken_back(fenced: Any) -> None:
    intake, agent, consumer, clock = fenced
    intake.hold_back(True)  # too much in hand: reading paused
    consumer.refuse_commits = KafkaConnectionError()
    clock.now += 11.0
    await intake.watch_fence()
    assert not intake.ready
    consumer.refuse_commits = None
    await intake.watch_fence()
    intake.hold_back(False)  # what was in hand was dropped with the partitions
    consumer.put(A0, b"a")
    assert [r.value for r in (await intake.read(0, 100))[A0]] == [b"a"]


async def test_a_position_past_the_partitions_end_is_read_again_from_the_last_commit(setup: Any) -> None:
    """A broker back with less than it had: the records written after it came back are read, not skipped."""
    intake, agent, consumer, clock = setup
    for value in (b"a", b"b", b"c", b"d", b"e"):
        consumer.put(A0, value)
    await round_(intake, agent)
    consumer.commits.clear()
    consumer.group[A0] = 2  # as if the commit of 5 never landed; the broker kept only the first three records
    intake._committed[A0] = 2
    del consumer.logs[A0][3:]
    consumer.put(A0, b"new-3")  # written after it came back, before the worker fetched again
    taken: list[tuple[int, bytes]] = []
    intake.each(await intake.read(0, 100), lambda tp, m: taken.append((m.offset, m.value)))
    assert taken == []  # aiokafka said the position (5) is past the end (4)
    clock.now += 2
    intake.each(await intake.read(0, 100), lambda tp, m: taken.append((m.offset, m.value)))
    assert taken == [(2, b"c"), (3, b"new-3")]
    await intake.commit()
    assert consumer.commits[-1][A0] == 4  # never past the partition's end


async def test_with_no_commit_to_go_back_to_a_position_past_the_end_is_read_from_the_start(setup: Any) -> None:
    intake, agent, consumer, clock = setup
    for value in (b"a", b"b", b"c"):
        consumer.put(A1, value)
    await round_(intake, agent)
    intake._committed[A1] = 7  # more than the partition holds now: not a place to read from
    del consumer.logs[A1][1:]
    taken: list[int] = []
    await intake.read(0, 100)
    intake.each(await intake.read(0, 100), lambda tp, m: taken.append(m.offset))
    assert taken == [0]


async def test_a_takeover_that_fails_is_tried_again_and_the_partitions_are_then_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Raised to aiokafka's coordinator, the failure was logged and the partitions never read again."""
    monkeypatch.setattr("streams.kafka.intake.TAKE_OVER_RETRY_S", 0.0)
    consumer = FakeConsumer()
    agent = Recorder(consumer)
    failures = [KafkaConnectionError("the broker is unreachable"), asyncio.TimeoutError()]
    take_over = agent.take_over

    async def failing_twice(assigned: set[TopicPartition]) -> None:
        if failures:
            raise failures.pop()
        await take_over(assigned)

    agent.take_over = failing_twice  # type: ignore[method-assign]
    agent.intake = intake = Intake(consumer, ["in"], agent, NoCrashes(), "dead")
    await intake.start()
    consumer.put(A0, b"a")
    await consumer.rebalance([A0])
    assert intake.ready and agent.calls == [("take_over", [0])]
    assert [r.value for records in (await intake.read(0, 100)).values() for r in records] == [b"a"]
