"""The router: each workload to the tier that fits it, with its reasons."""

from __future__ import annotations

from core.routing import Needs, TierTimes, route


def test_a_users_chat_question_goes_realtime() -> None:
    decided = route(Needs(user_waiting=True, stream=True))
    assert decided.tier == "realtime" and decided.reasons == ["a user is waiting for the answer"]


def test_enriching_100000_product_descriptions_overnight_goes_batch() -> None:
    decided = route(Needs(bulk=True, priority="cost"))
    assert decided.tier == "batch"
    assert decided.reasons == ["nobody is waiting", "no deadline", "cost comes first: half price",
                               "part of a bulk volume"]


def test_a_report_the_user_will_check_in_10_minutes_goes_async() -> None:
    decided = route(Needs(max_wait_s=10 * 60.0 + 15 * 60.0))  # asked for now, looked at within 25 minutes
    assert decided.tier == "async" and "sooner than the batch tier can promise (24.0 h)" in decided.reasons[0]
    assert route(Needs(max_wait_s=10 * 60.0)).tier == "realtime"  # within the async SLA only realtime is sure


def test_a_deadline_the_batch_tier_cannot_meet_never_goes_to_batch_even_when_asked() -> None:
    decided = route(Needs(tier="batch", max_wait_s=6 * 3600.0))
    assert decided.tier == "async" and decided.reasons[0].startswith("asked for batch, but its deadline (6.0 h)")
    assert route(Needs(tier="batch", max_wait_s=30 * 3600.0)).tier == "batch"
    # A deployment that trusts its providers to answer within 12 h lets an overnight deadline through.
    assert route(Needs(max_wait_s=15 * 3600.0), TierTimes(batch_turnaround_s=12 * 3600.0)).tier == "batch"


def test_an_asked_for_tier_is_honoured_and_says_so() -> None:
    assert route(Needs(tier="realtime")).reasons == ["asked for realtime"]
    assert route(Needs(tier="async", user_waiting=True)).tier == "async"


def test_streaming_or_responsiveness_without_a_waiting_user() -> None:
    assert route(Needs(stream=True)).tier == "realtime"
    assert route(Needs(priority="responsiveness")).tier == "async"


def test_a_deadline_of_hours_with_cost_first_goes_flex_where_the_model_offers_it() -> None:
    decided = route(Needs(max_wait_s=3 * 3600.0, priority="cost", flex=True))
    assert decided.tier == "flex" and "flex processing, at the batch price" in decided.reasons[-1]
    assert route(Needs(max_wait_s=3 * 3600.0, priority="cost")).tier == "async"  # no flex for this model
    assert route(Needs(max_wait_s=3 * 3600.0, flex=True)).tier == "async"  # cost does not come first
    assert route(Needs(max_wait_s=20 * 60.0, priority="cost", flex=True)).tier == "async"  # too soon for flex
    assert route(Needs(priority="cost", flex=True)).tier == "batch"  # no deadline: batch, the same price


def test_flex_asked_for_a_model_without_it_goes_async_and_says_why() -> None:
    assert route(Needs(tier="flex", flex=True)).reasons == ["asked for flex"]
    decided = route(Needs(tier="flex"))
    assert decided.tier == "async" and "does not offer flex processing" in decided.reasons[0]
