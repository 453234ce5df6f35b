"""Playbooks, and their registry: one per alert type.

Adding one: a module here with a `Playbook` subclass (see desk.playbooks.base), one line in
`PLAYBOOKS`, and its tests. The desk has no case for any one type: it shows `checklist()` of the
playbook of each alert type in a case, with the tenant's own version when it has one.
"""

from desk.playbooks.account_takeover import AccountTakeoverPlaybook
from desk.playbooks.base import NEVER_ASK, TELL, VERIFY, Checklist, Playbook, Step, own_step_key
from desk.playbooks.location import LocationPlaybook
from desk.playbooks.login import LoginPlaybook
from desk.playbooks.password import PasswordPlaybook
from desk.playbooks.recovery import RecoveryPlaybook
from desk.playbooks.suspicious import SuspiciousPlaybook
from desk.playbooks.third_party import ThirdPartyPlaybook
from desk.playbooks.two_factor import TwoFactorPlaybook

PLAYBOOKS: dict[str, Playbook] = {
    playbook.alert_type: playbook
    for playbook in (
        LoginPlaybook(),
        LocationPlaybook(),
        SuspiciousPlaybook(),
        PasswordPlaybook(),
        TwoFactorPlaybook(),
        RecoveryPlaybook(),
        ThirdPartyPlaybook(),
        AccountTakeoverPlaybook(),
    )
}

__all__ = ["NEVER_ASK", "PLAYBOOKS", "TELL", "VERIFY", "Checklist", "Playbook", "Step", "own_step_key"]
