import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db
STRONG = "a-long-enough-passphrase-77"


def run(*args, stdin=""):
    out = io.StringIO()
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out)
    finally:
        sys.stdin = old
    return out.getvalue()


def test_create_tenant():
    assert "Created tenant acme" in run("create_tenant", "acme", "--name", "Acme Bank")
    assert Tenant.objects.get(slug="acme").name == "Acme Bank"


@pytest.mark.parametrize("slug", ["Not A Slug", ""])
def test_create_tenant_refuses_bad_slugs(slug):
    with pytest.raises(CommandError):
        run("create_tenant", slug, "--name", "X")
    assert not Tenant.objects.exists()


def test_create_tenant_refuses_a_duplicate(tenant_a):
    with pytest.raises(CommandError, match="slug"):
        run("create_tenant", tenant_a.slug, "--name", "Again")


def test_add_staff_in_several_tenants_with_password_from_stdin(tenant_a, tenant_b):
    out = run(
        "add_staff", "amy", "--role", "agent", "--tenant", "tenant-a", "--tenant", "tenant-b",
        "--email", "amy@example.com", "--password-stdin", stdin=STRONG + "\n",
    )  # fmt: skip
    assert "Created amy" in out
    user = User.objects.get(username="amy")
    assert user.check_password(STRONG) and not user.is_bpo_admin
    assert set(user.memberships.values_list("tenant__slug", "role")) == {("tenant-a", "agent"), ("tenant-b", "agent")}


def test_add_staff_admin_without_tenant_is_a_bpo_admin(db):
    run("add_staff", "boss", "--role", "admin", "--password-stdin", stdin=STRONG)
    user = User.objects.get(username="boss")
    assert user.is_bpo_admin and user.is_staff and not user.memberships.exists()


def test_add_staff_again_changes_the_role(agent, tenant_a):
    run("add_staff", "agent", "--role", "supervisor", "--tenant", "tenant-a")
    assert Membership.objects.get(user=agent, tenant=tenant_a).role == Role.SUPERVISOR


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["--role", "agent"], STRONG, "needs at least one --tenant"),
        (["--role", "agent", "--tenant", "nope"], STRONG, "No such tenant: nope"),
        (["--role", "agent", "--tenant", "tenant-a"], "short", "password"),
        (["--role", "agent", "--tenant", "tenant-a"], "", "cannot be empty"),
    ],
)
def test_add_staff_refusals_change_nothing(tenant_a, args, stdin, message):
    with pytest.raises(CommandError, match=message):
        run("add_staff", "zed", *args, "--password-stdin", stdin=stdin)
    assert not User.objects.filter(username="zed").exists()


def test_add_staff_refuses_an_unknown_role(tenant_a):
    with pytest.raises(CommandError):
        run("add_staff", "zed", "--role", "root", "--tenant", "tenant-a", "--password-stdin", stdin=STRONG)


def test_seed_demo_is_idempotent_and_prints_how_to_pass_mfa(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    first = run("seed_demo")
    counts = (Tenant.objects.count(), User.objects.count(), Membership.objects.count())
    second = run("seed_demo")
    assert counts == (Tenant.objects.count(), User.objects.count(), Membership.objects.count()) == (2, 5, 6)
    password = (tmp_path / ".demo-password").read_text()
    assert f"Password for every demo user: {password}" in first
    assert first.splitlines()[-5:] == second.splitlines()[-5:]  # same secrets and codes both times
    assert User.objects.get(username="agent.both").memberships.count() == 2
    assert User.objects.get(username="admin").is_bpo_admin
    assert "TOTP secret" in first and "agent.acme" in first


def test_seed_demo_and_totp_code_refuse_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError):
        run("seed_demo")
    with pytest.raises(CommandError):
        run("totp_code", "admin")
