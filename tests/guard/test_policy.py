"""The TOML policy catalog: the documented format, presets, and errors that name action and key."""

from __future__ import annotations

import pytest
from freshid_guard import ActionPolicy, PolicyError, load_policies, parse_policies
from freshid_guard.policy import PRESETS


def test_the_documented_example_parses() -> None:
    policies = load_policies(
        """
        [actions."billing.update"]
        label = "change billing details"
        max_age = 300
        amr = ["hwk", "otp"]
        min_acr = "urn:freshid:acr:mfa"
        bind = true
        """
    )
    assert policies == {
        "billing.update": ActionPolicy(
            action="billing.update",
            label="change billing details",
            max_age=300,
            amr=frozenset({"hwk", "otp"}),
            min_acr="urn:freshid:acr:mfa",
            bind=True,
        )
    }
    assert policies["billing.update"].authorization_details() == [
        {"type": "urn:freshid:action", "action": "billing.update"}
    ]


def test_defaults() -> None:
    policy = load_policies('[actions."keys.reveal"]\nmax_age = 600\n')["keys.reveal"]
    assert policy == ActionPolicy("keys.reveal", "keys.reveal", 600)
    assert policy.amr == frozenset() and policy.min_acr is None and not policy.bind


def test_an_empty_catalog_is_empty() -> None:
    assert load_policies("") == {}


@pytest.mark.parametrize(
    ("preset", "max_age", "min_acr"),
    [
        ("aal1", 30 * 24 * 3600, "urn:freshid:acr:1fa"),
        ("aal2", 30 * 60, "urn:freshid:acr:mfa"),
        ("aal3", 15 * 60, "urn:freshid:acr:phr"),
    ],
)
def test_presets_fill_defaults(preset: str, max_age: int, min_acr: str) -> None:
    policy = load_policies(f'[actions.a]\npreset = "{preset}"\n')["a"]
    assert (policy.max_age, policy.min_acr) == (max_age, min_acr)
    assert (PRESETS[preset].max_age, PRESETS[preset].min_acr) == (max_age, min_acr)


def test_explicit_keys_win_over_the_preset() -> None:
    policy = load_policies(
        '[actions.a]\npreset = "aal3"\nmax_age = 60\nmin_acr = "urn:freshid:acr:mfa"\n'
    )["a"]
    assert (policy.max_age, policy.min_acr) == (60, "urn:freshid:acr:mfa")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[actions.a\n", "not valid TOML"),
        ("[other]\nx = 1\n", "unknown top-level key 'other'"),
        ("actions = 3\n", "'actions' must be a table"),
        ("[actions]\na = 3\n", "action 'a': must be a table"),
        ('[actions."bad name"]\nmax_age = 1\n', "action 'bad name': the name"),
        ('[actions.".a"]\nmax_age = 1\n', "action '.a': the name"),
        ("[actions.a]\nmax_age = 1\nmaxage = 2\n", "action 'a': unknown key 'maxage'"),
        ("[actions.a]\nlabel = 'x'\n", "action 'a': key 'max_age' is required"),
        ("[actions.a]\nmax_age = '300'\n", "action 'a': key 'max_age' must be an integer"),
        ("[actions.a]\nmax_age = 1.5\n", "action 'a': key 'max_age' must be an integer"),
        ("[actions.a]\nmax_age = true\n", "action 'a': key 'max_age' must be an integer"),
        ("[actions.a]\nmax_age = -1\n", "action 'a': key 'max_age' must not be negative"),
        ("[actions.a]\nmax_age = 1\nlabel = 3\n", "action 'a': key 'label' must be a non-empty"),
        ("[actions.a]\nmax_age = 1\nlabel = ''\n", "action 'a': key 'label' must be a non-empty"),
        ('[actions.a]\nmax_age = 1\nlabel = "a\\nb"\n', "action 'a': key 'label' must be one line"),
        (
            "[actions.a]\nmax_age = 1\namr = 'otp'\n",
            "action 'a': key 'amr' must be a non-empty list",
        ),
        ("[actions.a]\nmax_age = 1\namr = []\n", "action 'a': key 'amr' must be a non-empty list"),
        ("[actions.a]\nmax_age = 1\namr = [1]\n", "action 'a': key 'amr' has an invalid value 1"),
        ("[actions.a]\nmax_age = 1\namr = ['o t p']\n", "action 'a': key 'amr' has an invalid"),
        (
            "[actions.a]\nmax_age = 1\nmin_acr = 2\n",
            "action 'a': key 'min_acr' must be a non-empty",
        ),
        (
            "[actions.a]\nmax_age = 1\nmin_acr = 'gold'\n",
            "action 'a': key 'min_acr' must be one of",
        ),
        (
            "[actions.a]\nmax_age = 1\nbind = 'yes'\n",
            "action 'a': key 'bind' must be true or false",
        ),
        ("[actions.a]\npreset = 'aal4'\n", "action 'a': unknown preset 'aal4'"),
        ("[actions.a]\npreset = 2\n", "action 'a': key 'preset' must be a non-empty string"),
    ],
)
def test_errors_name_the_action_and_the_key(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as error:
        load_policies(text)
    assert message in str(error.value)


def test_parse_policies_takes_an_already_parsed_document() -> None:
    policies = parse_policies({"actions": {"a": {"max_age": 5, "bind": True}}})
    assert policies["a"].bind and policies["a"].max_age == 5
