"""The review screens: who may read what, filters, paging, history, activity, CSV export."""

import csv
import io
import re

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Role
from accounts.testing import TEST_PASSWORD, make_staff, totp_code_for, verified_client
from audit.models import Action, AuditEvent
from audit.services import audit_record

pytestmark = pytest.mark.django_db
LIST = reverse("audit:event_list")


@pytest.fixture
def trail(tenant_a, tenant_b, agent, agent_b):
    """Events in both tenants and one without a tenant."""
    for i in range(3):
        audit_record(action=Action.VIEW, actor=agent, tenant=tenant_a, target_type="test.case", target_id=str(i))
    audit_record(action=Action.VIEW, actor=agent_b, tenant=tenant_b, target_type="test.case", target_id="b1")
    audit_record(action=Action.LOGIN, actor=agent)
    return tenant_a, tenant_b


def shown_ids(response):
    return {e.pk for e in response.context["events"]}


def test_supervisor_sees_only_their_tenants_events(supervisor, trail):
    tenant_a, tenant_b = trail
    response = verified_client(supervisor).get(LIST)
    assert response.status_code == 200
    events = AuditEvent.objects.filter(pk__in=shown_ids(response))
    assert events.exists()
    assert set(events.values_list("tenant_id", flat=True)) == {tenant_a.pk}
    assert "test.case b1" not in response.content.decode()


def test_bpo_admin_sees_every_tenant_and_events_without_one(admin_user, trail):
    response = verified_client(admin_user).get(LIST)
    tenants = set(AuditEvent.objects.filter(pk__in=shown_ids(response)).values_list("tenant_id", flat=True))
    assert {trail[0].pk, trail[1].pk, None} <= tenants


@pytest.mark.parametrize("name, kwargs", [
    ("audit:event_list", {}),
    ("audit:export", {}),
    ("audit:target_history", {"target_type": "test.case", "target_id": "1"}),
    ("audit:actor_activity", {"user_id": 1}),
])  # fmt: skip
def test_agents_cannot_read_the_audit_at_all(agent, otp_client, trail, name, kwargs):
    url = reverse(name, kwargs=kwargs)
    if name == "audit:export":  # export first asks for re-authentication, then refuses all the same
        response = otp_client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:reauth"))
        otp_client.post(reverse("accounts:reauth"), {"password": TEST_PASSWORD, "token": totp_code_for(agent)})
    response = otp_client.get(url)
    assert response.status_code == 404
    assert "trail" not in response.content.decode().lower()


def test_another_tenants_filter_is_refused_and_shows_nothing(supervisor, trail):
    tenant_b = trail[1]
    response = verified_client(supervisor).get(LIST, {"tenant": tenant_b.pk})
    assert response.status_code == 400
    assert response.context["events"] == []
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize("params, message", [
    ({"date_from": "2026-13-01"}, "Enter a valid date"),
    ({"date_from": "2026-02-02", "date_to": "2026-02-01"}, "before the start date"),
    ({"target_id": "1"}, "Give the target type"),
    ({"before": "-5"}, "greater than or equal to 1"),
])  # fmt: skip
def test_malformed_filters_answer_400_with_a_clear_message(supervisor, trail, params, message):
    response = verified_client(supervisor).get(LIST, params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_filters_by_action_target_actor_and_date(supervisor, trail, agent):
    client = verified_client(supervisor)
    ids = shown_ids(client.get(LIST, {"action": "view", "target_type": "test.case", "target_id": "1"}))
    assert [AuditEvent.objects.get(pk=pk).target_id for pk in ids] == ["1"]
    by_actor = AuditEvent.objects.filter(pk__in=shown_ids(client.get(LIST, {"actor": "agent"})))
    assert set(by_actor.values_list("actor_id", flat=True)) == {agent.pk}
    assert shown_ids(client.get(LIST, {"date_to": "2000-01-01"})) == set()


def test_keyset_pages_cover_everything_once(supervisor, tenant_a, agent, settings):
    settings.AUDIT_PAGE_SIZE = 4
    for i in range(10):
        audit_record(action=Action.VIEW, actor=agent, tenant=tenant_a, target_type="test.case", target_id=f"p{i}")
    client = verified_client(supervisor)
    seen, url, pages = [], LIST + "?target_type=test.case", 0
    while url:
        response = client.get(url if url.startswith("/") else LIST + url)
        seen += [e.pk for e in response.context["events"]]
        url, pages = response.context["older_url"], pages + 1
    assert pages == 3 and len(seen) == len(set(seen)) == 10
    assert seen == sorted(seen, reverse=True)


def test_list_query_count_does_not_grow_with_the_page(
    supervisor, tenant_a, agent, django_assert_max_num_queries, settings
):
    for i in range(60):
        audit_record(action=Action.VIEW, actor=agent, tenant=tenant_a, target_type="test.case", target_id=str(i))
    client = verified_client(supervisor)
    client.get(LIST)
    with django_assert_max_num_queries(25):
        response = client.get(LIST)
    assert len(response.context["events"]) == settings.AUDIT_PAGE_SIZE


def test_viewing_the_audit_is_itself_recorded_with_the_ids_shown(supervisor, trail):
    response = verified_client(supervisor).get(LIST)
    record = AuditEvent.objects.filter(actor=supervisor, action=Action.LIST, target_type="audit.auditevent").latest(
        "id"
    )
    assert set(record.metadata["ids"]) == {str(pk) for pk in shown_ids(response)}
    assert record.tenant_id == trail[0].pk and record.actor_role == Role.SUPERVISOR


def test_object_history_and_user_activity(supervisor, trail, agent, tenant_a):
    client = verified_client(supervisor)
    history = client.get(reverse("audit:target_history", args=["test.case", "2"]))
    assert {AuditEvent.objects.get(pk=pk).target_id for pk in shown_ids(history)} == {"2"}
    activity = client.get(reverse("audit:actor_activity", args=[agent.pk]))
    assert shown_ids(activity) and all(AuditEvent.objects.get(pk=pk).actor_id == agent.pk for pk in shown_ids(activity))


def test_export_needs_reauthentication_and_is_recorded(supervisor, trail):
    client = verified_client(supervisor)
    url = reverse("audit:export") + "?action=view"
    assert client.get(url)["Location"].startswith(reverse("accounts:reauth"))
    client.post(reverse("accounts:reauth"), {"password": TEST_PASSWORD, "token": totp_code_for(supervisor)})
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "occurred_at", "tenant"]
    assert {row[2] for row in rows[1:]} == {"tenant-a"} and {row[5] for row in rows[1:]} == {"view"}
    export = AuditEvent.objects.filter(actor=supervisor, action=Action.EXPORT).latest("id")
    assert export.metadata["filters"] == {"action": "view"}


def test_export_neutralises_spreadsheet_formulas(admin_user, tenant_a):
    audit_record(action=Action.VIEW, tenant=tenant_a, target_type="test.case", target_id="x", reason="=HYPERLINK(1)")
    client = verified_client(admin_user)
    client.post(reverse("accounts:reauth"), {"password": TEST_PASSWORD, "token": totp_code_for(admin_user)})
    body = b"".join(client.get(reverse("audit:export")).streaming_content).decode()
    assert "'=HYPERLINK(1)" in body and ",=HYPERLINK" not in body


def test_audit_admin_is_read_only(admin_user, trail):
    client = verified_client(admin_user)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    event = AuditEvent.objects.first()
    assert client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_supervisor_of_one_tenant_agent_of_another(tenant_a, tenant_b, trail):
    user = make_staff("mixed", role=Role.SUPERVISOR, tenants=[tenant_a])
    services.membership_set(user=user, tenant=tenant_b, role=Role.AGENT)
    tenants = set(
        AuditEvent.objects.filter(pk__in=shown_ids(verified_client(user).get(LIST))).values_list("tenant_id", flat=True)
    )
    assert tenants == {tenant_a.pk}


def test_date_ranges_are_exact_at_their_edges(supervisor, tenant_a, agent):
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from audit import triggers

    events = [
        audit_record(action=Action.VIEW, actor=agent, tenant=tenant_a, target_type="dated", target_id=str(d))
        for d in (10, 5, 2)
    ]
    with transaction.atomic():  # place them 10, 5 and 2 days back, in insertion order
        triggers.suspend(connection, ("audit_auditevent",))
        for event, days in zip(events, (10, 5, 2), strict=True):
            AuditEvent.objects.filter(pk=event.pk).update(occurred_at=timezone.now() - timedelta(days=days))
        triggers.restore(connection, ("audit_auditevent",))
    client = verified_client(supervisor)
    day = lambda n: (timezone.now() - timedelta(days=n)).date().isoformat()  # noqa: E731

    def shown(**params):
        response = client.get(LIST, {"target_type": "dated", **params})
        return sorted(int(AuditEvent.objects.get(pk=pk).target_id) for pk in shown_ids(response))

    assert shown(date_from=day(6), date_to=day(1)) == [2, 5]
    assert shown(date_from=day(5), date_to=day(5)) == [5]
    assert shown(date_to=day(7)) == [10]
    assert shown(date_from=day(1)) == []


def test_a_page_across_tenants_is_recorded_in_each_tenants_trail(admin_user, trail):
    tenant_a, tenant_b = trail
    response = verified_client(admin_user).get(LIST)
    records = AuditEvent.objects.filter(actor=admin_user, action=Action.LIST, target_type="audit.auditevent")
    by_tenant = {r.tenant_id: set(r.metadata["ids"]) for r in records}
    shown = AuditEvent.objects.filter(pk__in=shown_ids(response))
    for tenant_id in (tenant_a.pk, tenant_b.pk, None):
        expected = {str(pk) for pk in shown.filter(tenant_id=tenant_id).values_list("pk", flat=True)}
        assert by_tenant[tenant_id] == expected


def test_an_unknown_and_an_out_of_scope_username_answer_alike(supervisor, trail, agent_b):
    """agent_b exists, but only in tenant B: the filter must not tell a tenant-A supervisor so."""
    client = verified_client(supervisor)
    out_of_scope = client.get(LIST, {"actor": agent_b.username})
    unknown = client.get(LIST, {"actor": "no-such-user"})
    assert out_of_scope.status_code == unknown.status_code == 200
    assert out_of_scope.context["events"] == unknown.context["events"] == []
    assert not out_of_scope.context["form"].errors and not unknown.context["form"].errors

    def page(response, name):  # the same page, but for the name typed and the per-response tokens
        return re.sub(
            r'(X-CSRFToken": |csrfmiddlewaretoken" value=)"[^"]+"', "TOKEN", response.content.decode()
        ).replace(name, "NAME")

    assert page(out_of_scope, agent_b.username) == page(unknown, "no-such-user")


def test_activity_pages_go_by_id_and_name_nobody_outside_the_readers_scope(supervisor, trail, agent, agent_b):
    client = verified_client(supervisor)
    mine = client.get(reverse("audit:actor_activity", args=[agent.pk]))
    assert mine.status_code == 200 and mine.context["title"] == "Activity of agent"
    assert f'href="/audit/actor/{agent.pk}/"' in client.get(LIST).content.decode()  # the rows link by id
    other = client.get(reverse("audit:actor_activity", args=[agent_b.pk]))
    missing = client.get(reverse("audit:actor_activity", args=[999999]))
    assert other.status_code == missing.status_code == 200
    assert other.context["events"] == missing.context["events"] == []
    assert agent_b.username not in other.content.decode()


def test_the_access_log_of_an_activity_page_holds_no_username(supervisor, trail, agent, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="alertdesk.access")
    verified_client(supervisor).get(reverse("audit:actor_activity", args=[agent.pk]))
    lines = [r.getMessage() for r in caplog.records if r.name == "alertdesk.access"]
    assert lines and all(agent.username not in line for line in lines)
    assert f"/audit/actor/{agent.pk}/" in lines[-1]


def test_a_bpo_admin_reads_the_trail_only_while_their_group_carries_the_permission(admin_user, trail):
    from django.contrib.auth.models import Group, Permission

    client = verified_client(admin_user)
    assert client.get(LIST).status_code == 200
    group = Group.objects.get(name="bpo_admin")
    group.permissions.remove(Permission.objects.get(content_type__app_label="audit", codename="view_auditevent"))
    assert client.get(LIST).status_code == 404


def test_targets_read_as_names_not_as_types_and_ids(admin_user, tenant_a, agent):
    from alerts.tests.test_detection import feed

    feed(tenant_a, "password.changed", initiated_by="user", account="alice")
    from alerts.models import Alert

    alert = Alert.objects.get(type="password")
    audit_record(action=Action.VIEW, actor=admin_user, tenant=tenant_a, target=alert)
    audit_record(action=Action.UPDATE, actor=admin_user, target=agent)
    client = verified_client(admin_user)
    body = client.get(LIST).content.decode()
    assert f"Alert #{alert.pk} (password change)" in body
    assert f">{agent.username}</a>" in body and f"accounts.user {agent.pk}" not in body
    history = client.get(reverse("audit:target_history", args=["alerts.alert", str(alert.pk)]))
    assert history.context["title"] == f"History of Alert #{alert.pk} (password change)"
    assert (
        client.get(reverse("audit:target_history", args=["accounts.user", str(agent.pk)])).context["title"]
        == f"History of {agent.username}"
    )


def test_one_request_labels_a_bpo_admin_with_one_role(admin_user, trail):
    response = verified_client(admin_user).get(LIST)
    assert response.status_code == 200
    records = AuditEvent.objects.filter(actor=admin_user, action=Action.LIST, target_type="audit.auditevent")
    assert records.count() >= 2  # the page spans tenants: one record per tenant
    assert set(records.values_list("actor_role", flat=True)) == {"bpo_admin"}


def test_a_named_step_reads_with_what_it_was_about_and_nothing_personal(supervisor, tenant_a, agent):
    audit_record(
        action=Action.UPDATE, actor=agent, tenant=tenant_a, target_type="test.case", target_id="7",
        metadata={"event": "action_requested", "action_kind": "reset_mfa", "customer": 12, "to": "+***78"},
    )  # fmt: skip
    audit_record(
        action=Action.REVEAL, actor=agent, tenant=tenant_a, target_type="test.case", target_id="7",
        reason="Confirm a detail: reading it back", metadata={"field": "email", "expires_at": "2026-01-01T00:00:00"},
    )  # fmt: skip
    html = verified_client(supervisor).get(reverse("audit:target_history", args=["test.case", "7"])).content.decode()
    assert "Step: action requested (reset_mfa)" in html
    assert "About: email" in html and "Reason: Confirm a detail: reading it back" in html
    assert "+***78" not in html  # metadata other than the step's kind, method, channel and field stays out
