"""Telling the user, in one sentence, why they are asked to prove it again."""

from __future__ import annotations

from freshid.freshness import Authenticate


def duration(seconds: int) -> str:
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 3600:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if seconds < 86400:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''}"


def explain(outcome: Authenticate, proof_age: int | None) -> str | None:
    if outcome.reason == "prompt_login" or (outcome.reason == "max_age" and outcome.max_age == 0):
        return "This app asks you to sign in again for this step."
    if (
        outcome.reason in {"max_age", "policy"}
        and outcome.max_age is not None
        and proof_age is not None
    ):
        return (
            f"Your last sign-in was {duration(proof_age)} ago; this app needs a sign-in within "
            f"the last {duration(outcome.max_age)}."
        )
    if outcome.reason == "acr":
        return "This app needs a stronger sign-in than the one you used."
    if outcome.reason == "policy":
        return "This action needs a recent sign-in."
    return None
