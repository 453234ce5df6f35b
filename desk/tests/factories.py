"""Small factories for desk rows that tests need in numbers or in states services reach only step by step."""

from datetime import timedelta

from django.utils import timezone

from desk.models import AccountAction, ActionState


def account_actions_make(case, requested_by, state, n=1, *, action="lock", params=None, minutes_ago=0):
    """`n` account actions of `case` in `state`, asked for `minutes_ago` (a waiting one holds an hour)."""
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return AccountAction.objects.bulk_create(
        AccountAction(tenant=case.tenant, case=case, customer=case.customer, action=action, params=params or {},
                      state=state, requested_by=requested_by, requested_at=at, updated_at=at,
                      hold_until=at + timedelta(hours=1) if state == ActionState.WAITING else None)
        for _ in range(n)
    )  # fmt: skip
