"""What a playbook declares, and the checklist the desk shows from it.

A playbook is a small class per alert type: what the agent verifies, what they tell the customer,
what they must never ask for, and the steps the customer is given. The desk reads only
`Playbook.checklist()`; a tenant's own version (desk.models.PlaybookOverride) replaces the verify,
tell and customer steps, and can add to the "never ask" list but not take from it.
"""

import hashlib
from dataclasses import dataclass

VERIFY, TELL = "verify", "tell"

# Never asked for, whatever the alert and whatever a tenant's own playbook says: attackers who call
# a help desk pretending to be the customer want exactly these.
NEVER_ASK: tuple[str, ...] = (
    "Their password, or any part of it.",
    "A sign-in, reset, recovery or two-factor code from the client's systems (the only code ever read back "
    "is the verification code sent from this case to a channel on file).",
    "Answers to their security questions, full card numbers or PINs.",
)

# The first step of every default playbook: nothing is disclosed before it.
VERIFY_CALLER = (
    "caller_verified",
    "Verify the caller before you disclose or change anything: a one-time code sent to a channel on file, "
    "never to an address or number given during the call.",
)


@dataclass(frozen=True)
class Step:
    """One step an agent ticks on a case. `key` is stable: checks are recorded against it."""

    key: str
    kind: str  # VERIFY or TELL
    text: str


@dataclass(frozen=True)
class Checklist:
    """The playbook for one alert type as a tenant's agents see it."""

    alert_type: str
    label: str
    steps: tuple[Step, ...]
    never_ask: tuple[str, ...]
    customer_steps: tuple[str, ...]
    tenant_own: bool = False

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)


def own_step_key(kind: str, text: str) -> str:
    """The key of a step a tenant wrote: follows its text, so an edited step is a new step (its
    earlier checks keep the text they were made against)."""
    return "t-" + hashlib.sha256(f"{kind}\0{text}".encode()).hexdigest()[:12]


class Playbook:
    """The default playbook of one alert type. Subclasses declare; nothing here knows any type."""

    alert_type: str = ""
    label: str = ""
    verify: tuple[tuple[str, str], ...] = ()  # (key, text)
    tell: tuple[tuple[str, str], ...] = ()
    never_ask: tuple[str, ...] = ()  # in addition to NEVER_ASK
    customer_steps: tuple[str, ...] = ()

    def checklist(self, override=None) -> Checklist:
        """The checklist, or the tenant's own (`override`: a PlaybookOverride of this type)."""
        if override is None:
            steps = [Step(key, VERIFY, text) for key, text in self.verify]
            steps += [Step(key, TELL, text) for key, text in self.tell]
            return Checklist(
                alert_type=self.alert_type,
                label=self.label,
                steps=tuple(steps),
                never_ask=(*NEVER_ASK, *self.never_ask),
                customer_steps=self.customer_steps,
            )
        steps = [Step(own_step_key(VERIFY, text), VERIFY, text) for text in override.verify]
        steps += [Step(own_step_key(TELL, text), TELL, text) for text in override.tell]
        extra = tuple(text for text in override.never_ask if text not in NEVER_ASK and text not in self.never_ask)
        return Checklist(
            alert_type=self.alert_type,
            label=self.label,
            steps=tuple(steps),
            never_ask=(*NEVER_ASK, *self.never_ask, *extra),
            customer_steps=tuple(override.customer_steps),
            tenant_own=True,
        )
