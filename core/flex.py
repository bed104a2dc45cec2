"""OpenAI's flex processing: a synchronous call at batch prices, slower, refused when capacity is short; pure.

``service_tier: "flex"`` is offered for some models only (o3, o4-mini and the gpt-5 family when this
was written; ``TIERLINE_FLEX_MODELS`` may say otherwise). A refusal (``429``, "resource unavailable")
is waited out while the item's deadline allows; once it does not, the call goes to the standard
tier at full price, and the item's route says why.
"""

from __future__ import annotations

__all__ = ["DEFAULT_FLEX_MODELS", "offers_flex", "parse_models", "fall_back_reason"]

DEFAULT_FLEX_MODELS = ("o3", "o4-mini", "gpt-5")


def parse_models(text: str) -> tuple[str, ...]:
    """``o3,o4-mini,gpt-5`` → the model prefixes that offer flex."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def offers_flex(model: str, models: tuple[str, ...] = DEFAULT_FLEX_MODELS) -> bool:
    """Whether ``model`` (a name, or a dated snapshot of it) is one of ``models`` (a provider's that offer flex)."""
    return any(model == name or model.startswith(f"{name}-") for name in models)


def fall_back_reason(deadline: float | None, now: float, pause_s: float, standard_s: float,
                     refusals: int, max_refusals: int) -> str | None:
    """Why the next call should go to the standard tier instead of waiting ``pause_s`` for flex again, if it
    should: waiting would leave less than ``standard_s`` (a standard call's time) before the deadline, or
    flex was refused ``max_refusals`` times."""
    if deadline is not None and now + pause_s + standard_s > deadline:
        return ("flex was refused (429, resource unavailable) and the deadline leaves no time to wait: "
                "called at the standard tier, full price")
    if refusals >= max_refusals:
        return f"flex was refused {refusals} times (429, resource unavailable): called at the standard tier, full price"
    return None
