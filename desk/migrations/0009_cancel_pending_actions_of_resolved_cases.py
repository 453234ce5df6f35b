"""Cancel the account actions left pending on cases resolved before resolving cancelled them.

Since 0008 (state `cancelled`), desk.services.case_close cancels the case's actions that have not
gone out (waiting for a supervisor's approval, for the hold after the customer was told, or on hold
after their "No"; desk.models.ACTION_PENDING_STATES), each recorded on the case. Cases resolved
before that kept theirs: an on-hold or unapproved one stuck for ever (approval and release refuse a
resolved case), and a waiting one still sent by the beat relay when its hold ended, to an account
whose case nobody watches any more. This does for them what case_close does now.

Recorded honestly in the audit trail: one `action_cancelled` event per action on its case, as
case_close records it, but with no actor (actor_label "", origin "system": the case timeline shows
"AlertDesk", not the agent who resolved the case long before), the time this migration ran, and a
reason and metadata (`cancelled_by`) that say a data migration did it and when the case had been
resolved. Recording from a migration is viable here: the trail is append-only by triggers that
refuse UPDATE and DELETE, not INSERT, and rows enter their tenant's hash chain when the sealer next
runs (after the next committed audit record, or the scheduled `audit_seal`); they are sealed like
any other event, in commit order. The audit API itself (audit.services.audit_record) is not called:
a migration works on the historical models, and the API's request context, role lookup and
on-commit sealing belong to the running application. The fields it writes are written the same way
here, for the columns as they were at audit 0006.

Reversing it does nothing: a cancelled action cannot be told apart from one its case's resolution
cancelled, and re-opening one would send it to the client's systems. Idempotent: a second run finds
nothing pending on a resolved case.
"""

from django.db import migrations
from django.utils import timezone

# As they were when this migration was written (desk.models.ACTION_PENDING_STATES, ActionState.CANCELLED).
PENDING = ("pending_approval", "waiting", "on_hold")
CANCELLED = "cancelled"
BATCH = 500
REASON = (
    "The case was resolved before it went out. Cancelled by a data migration (desk 0009): the case was "
    "resolved before resolving a case cancelled its pending actions."
)


def cancel_pending_of_resolved(apps, schema_editor):
    AccountAction = apps.get_model("desk", "AccountAction")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    now = timezone.now()
    pending = AccountAction.objects.filter(state__in=PENDING, case__status="resolved").select_related("case")
    last = 0
    while True:
        # Locked (PostgreSQL: the migration's transaction), so no worker releases or approves one meanwhile.
        batch = list(pending.filter(pk__gt=last).select_for_update(of=("self",)).order_by("pk")[:BATCH])
        if not batch:
            return
        last = batch[-1].pk
        AccountAction.objects.filter(pk__in=[a.pk for a in batch]).update(state=CANCELLED, updated_at=now)
        AuditEvent.objects.bulk_create(_event(AuditEvent, action, now) for action in batch)


def _event(AuditEvent, action, now):  # noqa: N803 (a model class)
    """What desk.action_services.actions_cancel_for_resolved_case records, with no actor: the system."""
    case = action.case
    return AuditEvent(
        occurred_at=now,
        tenant_id=case.tenant_id,
        actor=None,
        actor_label="",
        actor_role="",
        action="update",
        origin="system",
        target_type="desk.case",
        target_id=str(case.pk),
        target_label=f"customer #{case.customer_id}",  # desk.models.Case.audit_label
        changes={"state": {"before": action.state, "after": CANCELLED}},
        reason=REASON,
        metadata={
            "event": "action_cancelled",
            "account_action": str(action.uuid),
            "action_kind": action.action,
            "cancelled_by": "migration desk.0009",
            "case_resolved_at": case.closed_at.isoformat() if case.closed_at else None,
        },
        request_id="",
        ip=None,
        user_agent="",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("desk", "0008_action_cancelled"),
        ("audit", "0006_target_changes_index"),
    ]

    operations = [migrations.RunPython(cancel_pending_of_resolved, migrations.RunPython.noop)]
