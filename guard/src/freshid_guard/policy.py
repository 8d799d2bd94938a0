"""The action policy catalog: which proof each named sensitive action demands.

One TOML file, read by the guard in every app and by the FreshID server (which uses it for its own
account actions and to tell the user what they are confirming). The format::

    [actions."billing.update"]
    label = "change billing details"   # shown as "Confirm it's you to change billing details"
    max_age = 300                      # seconds: the proof (auth_time) may be at most this old
    amr = ["hwk", "otp"]               # optional: any one of these RFC 8176 values must be in amr
    min_acr = "urn:freshid:acr:mfa"    # optional: minimum acr on the ladder 1fa < mfa < phr
    bind = true                        # optional: the proof is valid for one use of this action
    preset = "aal2"                    # optional: NIST SP 800-63B defaults (see below)

Rules:

- The only top-level table is ``actions``; each key under it is an action name made of letters,
  digits and ``. _ : -`` (at most 128 characters, starting with a letter or digit).
- ``max_age`` (an integer ≥ 0) is required, directly or through a preset.
- ``label`` defaults to the action name. ``bind`` defaults to false. An ``amr`` list, when given,
  must not be empty; ``min_acr`` must be a value of the ladder (:mod:`freshid_guard.acr`), since an
  unknown one could never be satisfied.
- Unknown keys, wrong types and unknown presets are errors (:class:`~freshid_guard.errors.
  PolicyError`) naming the action and the key.

Presets fill ``max_age`` and ``min_acr`` when the action does not set them itself (explicit keys
win). They follow NIST SP 800-63B (rev. 3) §4 reauthentication rules. The age of a proof can only
express the *inactivity* bound (the 12-hour absolute bound of AAL2/AAL3 limits the whole session,
which the provider enforces), so:

========  =====================  ===========================================================
preset    max_age                min_acr
========  =====================  ===========================================================
aal1      30 days (§4.1.3)       ``urn:freshid:acr:1fa``
aal2      30 minutes (§4.2.3)    ``urn:freshid:acr:mfa``
aal3      15 minutes (§4.3.3)    ``urn:freshid:acr:phr``
========  =====================  ===========================================================

A bound action's proof is requested and carried as an RFC 9396 ``authorization_details`` entry
``{"type": "urn:freshid:action", "action": "<name>"}`` (:meth:`ActionPolicy.authorization_details`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freshid_guard.acr import ACR_1FA, ACR_MFA, ACR_PHR, LADDER
from freshid_guard.errors import PolicyError

ACTION_DETAIL_TYPE = "urn:freshid:action"
"""The RFC 9396 ``authorization_details`` type naming the action a proof was given for."""

_ACTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_AMR_VALUE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEYS = frozenset({"label", "max_age", "amr", "min_acr", "bind", "preset"})


@dataclass(frozen=True)
class Preset:
    max_age: int
    min_acr: str


PRESETS: Mapping[str, Preset] = {
    "aal1": Preset(max_age=30 * 24 * 3600, min_acr=ACR_1FA),
    "aal2": Preset(max_age=30 * 60, min_acr=ACR_MFA),
    "aal3": Preset(max_age=15 * 60, min_acr=ACR_PHR),
}


@dataclass(frozen=True)
class ActionPolicy:
    """What proof the action ``action`` demands."""

    action: str
    label: str
    max_age: int
    amr: frozenset[str] = frozenset()
    min_acr: str | None = None
    bind: bool = False

    def authorization_details(self) -> list[dict[str, str]]:
        """The RFC 9396 §2 ``authorization_details`` that request (and prove) this action."""
        return [{"type": ACTION_DETAIL_TYPE, "action": self.action}]


def load_policies(text: str) -> dict[str, ActionPolicy]:
    """Parse a TOML policy catalog; raises :class:`PolicyError` naming the action and key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file is not valid TOML: {exc}") from None
    return parse_policies(document)


def load_policies_file(path: str | Path) -> dict[str, ActionPolicy]:
    """:func:`load_policies` on a UTF-8 file."""
    return load_policies(Path(path).read_text(encoding="utf-8"))


def parse_policies(document: Mapping[str, Any]) -> dict[str, ActionPolicy]:
    """Validate an already-parsed TOML document (a mapping with one ``actions`` table)."""
    extra = sorted(set(document) - {"actions"})
    if extra:
        raise PolicyError(f"unknown top-level key {extra[0]!r} (only [actions.*] tables)")
    actions = document.get("actions", {})
    if not isinstance(actions, Mapping):
        raise PolicyError("'actions' must be a table of action tables")
    return {name: parse_action(name, table) for name, table in actions.items()}


def parse_action(name: str, table: object) -> ActionPolicy:
    """Validate one ``[actions."name"]`` table."""
    if not _ACTION_NAME.fullmatch(name):
        raise PolicyError(
            f"action {name!r}: the name must be letters, digits and '._:-' (at most 128)"
        )
    if not isinstance(table, Mapping):
        raise PolicyError(f"action {name!r}: must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise PolicyError(f"action {name!r}: unknown key {unknown[0]!r}")

    preset: Preset | None = None
    if "preset" in table:
        preset_name = _string(name, "preset", table["preset"])
        if preset_name not in PRESETS:
            raise PolicyError(
                f"action {name!r}: unknown preset {preset_name!r} (one of {', '.join(PRESETS)})"
            )
        preset = PRESETS[preset_name]

    label = _string(name, "label", table["label"]) if "label" in table else name
    if len(label) > 200 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in label):
        raise PolicyError(
            f"action {name!r}: key 'label' must be one line of at most 200 characters"
        )

    if "max_age" in table:
        max_age = table["max_age"]
        if not isinstance(max_age, int) or isinstance(max_age, bool):
            raise PolicyError(f"action {name!r}: key 'max_age' must be an integer (seconds)")
        if max_age < 0:
            raise PolicyError(f"action {name!r}: key 'max_age' must not be negative")
    elif preset is not None:
        max_age = preset.max_age
    else:
        raise PolicyError(f"action {name!r}: key 'max_age' is required (or a preset)")

    amr: frozenset[str] = frozenset()
    if "amr" in table:
        values = table["amr"]
        if not isinstance(values, list) or not values:
            raise PolicyError(f"action {name!r}: key 'amr' must be a non-empty list of strings")
        for value in values:
            if not isinstance(value, str) or not _AMR_VALUE.fullmatch(value):
                raise PolicyError(
                    f"action {name!r}: key 'amr' has an invalid value {value!r} (RFC 8176 values)"
                )
        amr = frozenset(values)

    min_acr: str | None = preset.min_acr if preset is not None else None
    if "min_acr" in table:
        min_acr = _string(name, "min_acr", table["min_acr"])
        if min_acr not in LADDER:
            raise PolicyError(
                f"action {name!r}: key 'min_acr' must be one of {', '.join(LADDER)}; "
                f"got {min_acr!r}"
            )

    bind = table.get("bind", False)
    if not isinstance(bind, bool):
        raise PolicyError(f"action {name!r}: key 'bind' must be true or false")

    return ActionPolicy(
        action=name, label=label, max_age=max_age, amr=amr, min_acr=min_acr, bind=bind
    )


def _string(action: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyError(f"action {action!r}: key {key!r} must be a non-empty string")
    return value
