"""Queues and grants: made only through the services, audited, announced after commit."""

from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts import services as account_services
from accounts.models import Role
from accounts.testing import make_staff
from audit.models import Action, AuditEvent
from desk.models import Queue
from desk.selectors import queue_list_for
from desk.services import queue_create, queue_grant, queue_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(tenant_a):
    """An agent of tenant A with no queue granted yet (the shared fixture's agent holds the default
    queue, as add_staff grants it): these tests are about grants."""
    return make_staff("agent", role=Role.AGENT, tenants=[tenant_a])


def test_a_new_tenant_gets_its_default_queue_in_the_same_transaction(admin_user):
    tenant = account_services.tenant_create(slug="new", name="New", actor=admin_user)
    queue = Queue.objects.get(tenant=tenant)
    assert (queue.slug, queue.is_default, queue.alert_types, queue.min_severity) == ("default", True, [], None)
    assert AuditEvent.objects.filter(action=Action.CREATE, target_type="desk.queue", target_id=str(queue.pk)).exists()

    with pytest.raises(RuntimeError), transaction.atomic():
        account_services.tenant_create(slug="gone", name="Gone")
        raise RuntimeError
    assert not Queue.objects.filter(tenant__slug="gone").exists()


def test_queue_create_is_audited(tenant_a, admin_user):
    queue = queue_create(
        tenant=tenant_a, slug="ato", name="Takeover", alert_types=["recovery", "account_takeover"], min_severity=3,
        actor=admin_user,
    )  # fmt: skip
    assert queue.alert_types == ["account_takeover", "recovery"]
    record = AuditEvent.objects.get(action=Action.CREATE, target_type="desk.queue", target_id=str(queue.pk))
    assert record.actor == admin_user and record.tenant == tenant_a
    assert record.changes["min_severity"] == {"before": None, "after": 3}


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"alert_types": ["nope"]}, "alert_types"),
        ({"min_severity": 5}, "min_severity"),
        ({"min_severity": 0}, "min_severity"),
        ({"min_severity": True}, "min_severity"),
        ({}, "alert_types"),  # no filter: a second default
        ({"slug": "default", "min_severity": 2}, "slug"),
        ({"slug": "Not a slug", "min_severity": 2}, "slug"),
        ({"name": "", "min_severity": 2}, "name"),
    ],
)
def test_queue_create_refuses(tenant_a, kwargs, field):
    args = {"tenant": tenant_a, "slug": "q", "name": "Q", **kwargs}
    with pytest.raises(ValidationError) as caught:
        queue_create(**args)
    assert field in caught.value.message_dict
    assert Queue.objects.filter(tenant=tenant_a).count() == 1
    assert not AuditEvent.objects.filter(target_type="desk.queue", action=Action.CREATE, tenant=tenant_a).exclude(
        target_id=str(Queue.objects.get(tenant=tenant_a).pk)
    )


def test_queue_create_refuses_a_duplicate_slug_in_the_tenant_only(tenant_a, tenant_b):
    queue_create(tenant=tenant_a, slug="vip", name="VIP", min_severity=4)
    queue_create(tenant=tenant_b, slug="vip", name="VIP", min_severity=4)
    with pytest.raises(ValidationError):
        queue_create(tenant=tenant_a, slug="vip", name="Again", min_severity=3)


def test_the_database_refuses_a_second_default_and_a_default_with_a_filter(tenant_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        Queue.objects.create(tenant=tenant_a, slug="other", name="x", is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Queue.objects.filter(tenant=tenant_a, is_default=True).update(min_severity=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Queue.objects.filter(tenant=tenant_a, is_default=True).update(alert_types=["login"])


def test_grant_and_revoke_are_audited_once_per_change(tenant_a, agent, admin_user):
    queue = queue_create(tenant=tenant_a, slug="vip", name="VIP", min_severity=4)
    with mock.patch("config.push._send") as send, transaction.atomic():
        queue_grant(queue=queue, user=agent, actor=admin_user)
        assert not send.called  # nothing announced before commit
    assert agent.has_perm("desk.work_queue", queue)
    record = AuditEvent.objects.filter(action=Action.UPDATE, target_type="accounts.user", target_id=str(agent.pk)).get()
    assert record.actor == admin_user and record.tenant == tenant_a
    assert record.changes == {"queue vip": {"before": None, "after": "granted"}}
    assert record.metadata["queue"] == queue.pk

    queue_grant(queue=queue, user=agent)  # again: nothing changes, nothing recorded
    assert AuditEvent.objects.filter(action=Action.UPDATE, target_type="accounts.user").count() == 1

    queue_revoke(queue=queue, user=agent, actor=admin_user)
    assert not queue_list_for(user=agent).exists()
    last = AuditEvent.objects.filter(action=Action.UPDATE, target_type="accounts.user").latest("pk")
    assert last.changes == {"queue vip": {"before": "granted", "after": None}}
    queue_revoke(queue=queue, user=agent)  # revoking what is not granted: nothing
    assert AuditEvent.objects.filter(action=Action.UPDATE, target_type="accounts.user").count() == 2


def test_grant_pushes_access_changed_to_the_grantee_on_commit(tenant_a, agent, django_capture_on_commit_callbacks):
    queue = queue_create(tenant=tenant_a, slug="vip", name="VIP", min_severity=4)
    with mock.patch("config.push._send") as send:
        with django_capture_on_commit_callbacks(execute=True):
            queue_grant(queue=queue, user=agent)
        assert send.call_args.args[0] == [(f"user.{agent.pk}", {"type": "access.changed"})]
        send.reset_mock()
        with django_capture_on_commit_callbacks(execute=True):
            queue_revoke(queue=queue, user=agent)
        assert send.call_args.args[0] == [(f"user.{agent.pk}", {"type": "access.changed"})]


def test_only_a_member_of_the_queues_tenant_can_be_granted(tenant_a, tenant_b, agent_b, admin_user):
    queue = Queue.objects.get(tenant=tenant_a)
    grants = AuditEvent.objects.filter(action=Action.UPDATE, target_type="accounts.user")
    recorded = grants.count()  # agent_b holds tenant B's default queue already
    for outsider in (agent_b, admin_user, make_staff("nobody")):
        with pytest.raises(ValidationError):
            queue_grant(queue=queue, user=outsider)
    assert grants.count() == recorded
    # Any role of the tenant can be granted.
    sup = make_staff("sup", role=Role.SUPERVISOR, tenants=[tenant_a])
    queue_grant(queue=queue, user=sup)
