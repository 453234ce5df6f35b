"""The operator commands of contracts/staff-api.md: queue_create, queue_grant, add_staff's default queue."""

import io
import sys

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role, User
from accounts.testing import make_staff
from desk.models import Queue
from desk.selectors import queue_list_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(tenant_a):
    """An agent of tenant A with no queue granted yet (the shared fixture's agent holds the default
    queue, as add_staff grants it): these tests are about grants."""
    return make_staff("agent", role=Role.AGENT, tenants=[tenant_a])


STRONG = "a-long-enough-passphrase-77"


def run(*args, stdin=""):
    out = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out)
    finally:
        sys.stdin = old
    return out.getvalue()


def test_queue_create(tenant_a):
    out = run("queue_create", "tenant-a", "ato", "--name", "Takeover", "--types", "account_takeover", "recovery",
              "--min-severity", "3")  # fmt: skip
    assert "Created queue ato of tenant-a" in out
    queue = Queue.objects.get(tenant=tenant_a, slug="ato")
    assert (queue.name, queue.alert_types, queue.min_severity) == ("Takeover", ["account_takeover", "recovery"], 3)


@pytest.mark.parametrize(
    "args, reason",
    [
        (["nope", "q", "--name", "Q", "--min-severity", "2"], "No such tenant: nope."),
        (["tenant-a", "q", "--name", "Q"], "needs a filter"),
        (["tenant-a", "q", "--name", "Q", "--types", "bogus"], "Unknown alert types: bogus"),
        (["tenant-a", "q", "--name", "Q", "--min-severity", "x"], "--min-severity is a number"),
        (["tenant-a", "q", "--name", "Q", "--min-severity", "9"], "from 1 (low) to 4"),
        (["tenant-a", "default", "--name", "Q", "--min-severity", "2"], "default queue"),
        (["tenant-a", "Bad Slug", "--name", "Q", "--min-severity", "2"], "slug"),
    ],
)
def test_queue_create_refuses_with_a_reason(tenant_a, args, reason):
    with pytest.raises(CommandError) as caught:
        run("queue_create", *args)
    assert reason in str(caught.value) and "\n" not in str(caught.value)
    assert Queue.objects.count() == 1


def test_queue_create_refuses_a_duplicate(tenant_a):
    run("queue_create", "tenant-a", "vip", "--name", "VIP", "--min-severity", "4")
    with pytest.raises(CommandError, match="slug"):
        run("queue_create", "tenant-a", "vip", "--name", "VIP", "--min-severity", "3")


def test_queue_grant_and_revoke(tenant_a, agent):
    run("queue_create", "tenant-a", "vip", "--name", "VIP", "--min-severity", "4")
    assert "Granted" in run("queue_grant", "tenant-a", "vip", "agent")
    assert list(queue_list_for(user=agent).values_list("slug", flat=True)) == ["vip"]
    assert "Revoked" in run("queue_grant", "tenant-a", "vip", "agent", "--revoke")
    assert not queue_list_for(user=agent).exists()


@pytest.mark.parametrize(
    "args, reason",
    [
        (["nope", "default", "agent"], "No such tenant: nope."),
        (["tenant-a", "nope", "agent"], "No such queue of tenant-a: nope."),
        (["tenant-a", "default", "nobody"], "No such staff user: nobody."),
        (["tenant-b", "default", "agent"], "Only a staff member of the queue's tenant"),
    ],
)
def test_queue_grant_refuses_with_a_reason(tenant_a, tenant_b, agent, args, reason):
    with pytest.raises(CommandError) as caught:
        run("queue_grant", *args)
    assert reason in str(caught.value)
    assert not queue_list_for(user=agent).exists()


def test_add_staff_grants_an_agent_the_default_queues_unless_told_not_to(tenant_a, tenant_b):
    run("add_staff", "amy", "--role", "agent", "--tenant", "tenant-a", "--tenant", "tenant-b", "--password-stdin",
        stdin=STRONG)  # fmt: skip
    amy = User.objects.get(username="amy")
    assert set(queue_list_for(user=amy).values_list("tenant__slug", "slug")) == {
        ("tenant-a", "default"),
        ("tenant-b", "default"),
    }
    run("add_staff", "bob", "--role", "agent", "--tenant", "tenant-a", "--no-default-queue", "--password-stdin",
        stdin=STRONG)  # fmt: skip
    assert not queue_list_for(user=User.objects.get(username="bob")).exists()
    # A supervisor sees every queue through the role: no grant is made.
    run("add_staff", "sue", "--role", "supervisor", "--tenant", "tenant-a", "--password-stdin", stdin=STRONG)
    from guardian.models import UserObjectPermission

    assert not UserObjectPermission.objects.filter(user__username="sue").exists()
