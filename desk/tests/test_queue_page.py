"""The queue page (/queues/<id>/), its rows fragment, and the claim and "next" buttons: need-to-know,
queue order, filters and search, keyset pages, audited, a query count that does not grow."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.http import QueryDict
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.testing import make_staff, verified_client
from alerts.models import Alert, AlertStatus, AlertType, Severity
from alerts.services import alert_claim
from alerts.tests.factories import AlertFactory, CustomerFactory
from audit.models import Action, AuditEvent
from desk.models import Queue
from desk.selectors import QueuePosition
from desk.services import queue_create, queue_grant
from desk.views import QueueFilterForm

pytestmark = pytest.mark.django_db


def page_url(queue, **kw) -> str:
    return reverse("desk:queue", kwargs={"queue_id": getattr(queue, "pk", queue)})


def rows_url(queue) -> str:
    return reverse("desk:queue_rows", kwargs={"queue_id": getattr(queue, "pk", queue)})


def claim_url(queue, alert) -> str:
    return reverse("desk:queue_claim", kwargs={"queue_id": queue.pk, "alert_id": alert.pk})


def next_url(queue) -> str:
    return reverse("desk:queue_next", kwargs={"queue_id": queue.pk})


def row_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="queue-row[^"]*" data-alert-id="(\d+)"', response.content.decode())]


def row_of(response, alert) -> str:
    html = response.content.decode()
    match = re.search(rf'<tr class="queue-row[^"]*" data-alert-id="{alert.pk}".*?</tr>', html, re.S)
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0)))).strip() if match else ""


@pytest.fixture
def floor(tenant_a, tenant_b, agent):
    """Tenant A: default (granted to the agent) and takeover (not granted); tenant B's default.
    The default queue holds, in queue order: critical, high due soon, high due later, high with no
    due time, low overdue (breaching); plus one resolved (not shown)."""
    now = timezone.now()
    default_a = Queue.objects.get(tenant=tenant_a, is_default=True)
    takeover = queue_create(
        tenant=tenant_a, slug="takeover", name="Takeover", alert_types=[AlertType.ACCOUNT_TAKEOVER], min_severity=3
    )
    queue_grant(queue=default_a, user=agent)
    ann = CustomerFactory(tenant=tenant_a, external_id="acct-ann", email_masked="a***@e***", phone_masked="+***67")
    bob = CustomerFactory(tenant=tenant_a, external_id="acct-bob")
    made = {
        "low-overdue": AlertFactory(
            customer=ann, severity=Severity.LOW, sla_due_at=now - timedelta(minutes=3, seconds=20),
            first_seen_at=now - timedelta(hours=3), reason="Low but late.",
        ),
        "high-later": AlertFactory(customer=bob, severity=Severity.HIGH, sla_due_at=now + timedelta(minutes=50),
                                   first_seen_at=now - timedelta(hours=5)),
        "high-no-due": AlertFactory(customer=bob, severity=Severity.HIGH, first_seen_at=now - timedelta(hours=9)),
        "high-soon": AlertFactory(customer=ann, severity=Severity.HIGH,
                                  sla_due_at=now + timedelta(minutes=12, seconds=30),
                                  first_seen_at=now - timedelta(minutes=10), type=AlertType.PASSWORD, rule="password"),
        "critical": AlertFactory(customer=bob, severity=Severity.CRITICAL, sla_due_at=now + timedelta(hours=2),
                                 first_seen_at=now - timedelta(minutes=1), status=AlertStatus.ACKNOWLEDGED),
        "resolved": AlertFactory(customer=ann, severity=Severity.CRITICAL, status=AlertStatus.RESOLVED),
        "takeover-alert": AlertFactory(customer=ann, type=AlertType.ACCOUNT_TAKEOVER, rule="takeover",
                                       severity=Severity.CRITICAL),
        "foreign": AlertFactory(customer=CustomerFactory(tenant=tenant_b, external_id="acct-ann"),
                                severity=Severity.CRITICAL),
    }  # fmt: skip
    order = ["critical", "high-soon", "high-later", "high-no-due", "low-overdue"]
    return {
        "default_a": default_a,
        "takeover": takeover,
        "default_b": Queue.objects.get(tenant=tenant_b, is_default=True),
        "order": [made[n].pk for n in order],
        **made,
    }


class TestPage:
    def test_shows_the_queues_rows_in_queue_order_with_what_an_agent_needs(self, otp_client, agent, floor):
        response = otp_client.get(page_url(floor["default_a"]))
        assert response.status_code == 200
        assert row_ids(response) == floor["order"]
        assert row_of(response, floor["high-soon"]).split(" Claim")[0] == (
            f"Password change #{floor['high-soon'].pk} High acct-ann a***@e*** "
            "Two-factor authentication was turned off. 10 min in 12 min"
        )
        assert "overdue by 3 min" in row_of(response, floor["low-overdue"])
        html = response.content.decode()
        assert re.search(rf'<tr class="queue-row breaching" data-alert-id="{floor["low-overdue"].pk}"', html)
        assert html.count("queue-row breaching") == 1
        assert f'href="/alerts/{floor["critical"].pk}/"' in html
        assert html.count("data-viewing") == 5
        assert "Acknowledged" in row_of(response, floor["critical"])

    def test_rows_escape_the_data_and_say_when_there_is_no_customer_or_due_time(self, otp_client, tenant_a, floor):
        odd = CustomerFactory(tenant=tenant_a, external_id='<b>"acct"</b>', email_masked="", phone_masked="+*&7")
        escaped = AlertFactory(customer=odd, severity=Severity.CRITICAL, reason="<script>x</script> & 'y'")
        sourceless = AlertFactory(customer=None, tenant=tenant_a, severity=Severity.CRITICAL, evidence=[])
        html = otp_client.get(page_url(floor["default_a"])).content.decode()
        assert "<script>x" not in html and "<b>" not in html
        assert 'title="&lt;script&gt;x&lt;/script&gt; &amp; &#x27;y&#x27;"' in html
        assert (
            '<strong>&lt;b&gt;&quot;acct&quot;&lt;/b&gt;</strong>\n      <span class="contact">+*&amp;7</span>' in html
        )
        assert " Critical Many accounts Two-factor authentication" in row_of(
            otp_client.get(page_url(floor["default_a"])), sourceless
        )
        assert '<td class="col-sla"><span class="muted">none</span></td>' in html
        assert re.search(rf'data-alert-id="{escaped.pk}" data-testid="queue-row" tabindex="-1">\n    <td', html)

    @pytest.mark.parametrize(
        "query",
        ["", "type=password&severity=3&status=open", "mine=on&unassigned=on", "customer=%3Cb%3E%22x%22", "type=nope"],
    )
    def test_the_filter_controls_are_the_forms_own_widgets(self, otp_client, floor, query):
        """Written without the widget templates: the same markup as Django's rendering of the form."""
        html = otp_client.get(page_url(floor["default_a"]) + "?" + query).content.decode()
        form = QueueFilterForm(QueryDict(query))
        form.is_valid()
        for name in QueueFilterForm.FIELDS:
            assert str(form[name]) in html, name

    def test_a_page_without_filters_after_a_filtered_one_shows_blank_controls(self, otp_client, floor):
        """The controls of a page without filters are rendered once a process: a filtered page
        before it must not leave its values there."""
        url = page_url(floor["default_a"])
        filtered = otp_client.get(url + "?type=password&severity=3&mine=on&customer=acct-9").content.decode()
        assert 'value="acct-9"' in filtered and 'name="mine" id="id_mine" checked' in filtered
        for query in ("", "?cursor=", "?other=1"):
            html = otp_client.get(url + query).content.decode()
            blank = QueueFilterForm(QueryDict())
            blank.is_valid()
            for name in QueueFilterForm.FIELDS:
                assert str(blank[name]) in html, (query, name)
            assert "acct-9" not in html and " checked" not in html.split('role="search"')[1].split("</form>")[0]

    def test_a_role_that_may_not_work_alerts_sees_nobody_instead_of_claim(self, admin_user, floor):
        html = verified_client(admin_user).get(page_url(floor["default_a"])).content.decode()
        assert "data-claim" not in html and "csrfmiddlewaretoken" not in html.split("<tbody")[1]
        assert html.count('<td class="col-assignee" data-testid="assignee"><span class="muted">nobody</span>') == 5

    def test_the_sidebar_lists_the_users_queues_with_counts_and_marks_the_current_one(self, supervisor, floor):
        alert_claim(alert=floor["high-soon"], actor=supervisor)
        response = verified_client(supervisor).get(page_url(floor["default_a"]))
        nav = re.search(r'<nav class="queue-nav" aria-label="Queues">.*?</nav>', response.content.decode(), re.S)[0]
        links = re.findall(r'data-queue-link="(\d+)"( aria-current="page")?', nav)
        assert links == [(str(floor["default_a"].pk), ' aria-current="page"'), (str(floor["takeover"].pk), "")]
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", nav))
        assert "5 active 4 unassigned 1 breaching" in text and "1 active 1 unassigned 0 breaching" in text
        assert "you" in row_of(response, floor["high-soon"]).split()

    def test_the_assignee_column_says_you_names_others_and_offers_claim(self, otp_client, agent, supervisor, floor):
        alert_claim(alert=floor["critical"], actor=agent)
        alert_claim(alert=floor["high-soon"], actor=supervisor)
        response = otp_client.get(page_url(floor["default_a"]))
        assert row_of(response, floor["critical"]).endswith("you")
        assert row_of(response, floor["high-soon"]).endswith("supervisor")
        assert row_of(response, floor["high-later"]).endswith("Claim")

    def test_the_view_is_recorded_with_the_alerts_shown(self, otp_client, agent, floor):
        otp_client.get(page_url(floor["default_a"]))
        record = AuditEvent.objects.get(actor=agent, action=Action.LIST, target_type="alerts.alert")
        assert sorted(int(i) for i in record.metadata["ids"]) == sorted(floor["order"])

    def test_another_tenants_an_ungranted_and_a_missing_queue_answer_the_same_404(self, otp_client, floor):
        answers = [
            otp_client.get(url)
            for queue_id in (floor["default_b"].pk, floor["takeover"].pk, 999999)
            for url in (page_url(queue_id), rows_url(queue_id))
        ]
        assert {a.status_code for a in answers} == {404}
        tokens = re.compile(rb'(?<=csrfmiddlewaretoken" value=")[^"]+|(?<="X-CSRFToken": ")[^"]+')
        assert len({tokens.sub(b"", a.content) for a in answers}) == 1

    def test_password_only_goes_to_the_otp_step_and_anonymous_to_sign_in(self, password_only_client, floor):
        for url in (page_url(floor["default_a"]), rows_url(floor["default_a"])):
            response = password_only_client.get(url)
            assert response.status_code == 302 and "/accounts/mfa/" in response["Location"]
            response = Client().get(url)
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")

    def test_a_malformed_cursor_is_404(self, otp_client, floor):
        assert otp_client.get(page_url(floor["default_a"]), {"cursor": "nope"}).status_code == 404

    def test_the_page_loads_its_scripts_as_modules_and_has_the_live_hooks(self, otp_client, floor):
        html = otp_client.get(page_url(floor["default_a"])).content.decode()
        assert '<script type="module" src="/static/js/queue.js">' in html
        assert '<script type="module" src="/static/js/desk_live.js">' in html
        assert re.search(r"<span data-live-status[^>]*>Connecting…</span>", html)
        assert 'aria-live="polite"' in html and "<dialog" in html
        assert "<script>" not in html and " style=" not in html and "<style" not in html
        assert 'data-testid="desk-tenant">Tenant A<' in html


class TestFiltersAndPages:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"type": "password"}, ["high-soon"]),
            ({"severity": "3"}, ["high-soon", "high-later", "high-no-due"]),
            ({"status": "acknowledged"}, ["critical"]),
            ({"customer": "acct-ann"}, ["high-soon", "low-overdue"]),
            ({"customer": "acct-ann", "severity": "1"}, ["low-overdue"]),
            ({"customer": "nobody"}, []),
            ({"type": "not-a-type"}, ["critical", "high-soon", "high-later", "high-no-due", "low-overdue"]),
        ],
    )
    def test_filters_narrow_the_rows(self, otp_client, floor, query, expected):
        response = otp_client.get(page_url(floor["default_a"]), query)
        assert row_ids(response) == [floor[n].pk for n in expected]
        assert row_ids(otp_client.get(rows_url(floor["default_a"]), query)) == [floor[n].pk for n in expected]

    def test_mine_and_unassigned(self, otp_client, agent, supervisor, floor):
        alert_claim(alert=floor["high-later"], actor=agent)
        alert_claim(alert=floor["critical"], actor=supervisor)
        url = page_url(floor["default_a"])
        assert row_ids(otp_client.get(url, {"mine": "on"})) == [floor["high-later"].pk]
        unassigned = [floor[n].pk for n in ("high-soon", "high-no-due", "low-overdue")]
        assert row_ids(otp_client.get(url, {"unassigned": "on"})) == unassigned

    def test_searching_another_tenants_external_id_finds_nothing(self, otp_client, floor, tenant_b):
        CustomerFactory(tenant=tenant_b, external_id="acct-only-b")
        response = otp_client.get(page_url(floor["default_a"]), {"customer": "acct-only-b"})
        assert row_ids(response) == [] and "No active alert matches these filters." in response.content.decode()

    def test_older_links_walk_the_queue_with_the_filters_kept(self, otp_client, floor, settings, monkeypatch):
        monkeypatch.setattr("desk.views.QUEUE_PAGE_SIZE", 2)
        seen, url = [], page_url(floor["default_a"]) + "?severity=3"
        while url:
            response = otp_client.get(url)
            seen += row_ids(response)
            match = re.search(r'<a href="([^"]+)" id="older-link"', response.content.decode())
            url = unescape(match[1]) if match else None
            assert url is None or "severity=3" in url
        assert seen == [floor[n].pk for n in ("high-soon", "high-later", "high-no-due")]

    def test_the_fragment_is_the_rows_and_the_counts_only(self, otp_client, floor):
        response = otp_client.get(rows_url(floor["default_a"]))
        html = response.content.decode()
        assert response.status_code == 200 and row_ids(response) == floor["order"]
        assert "<nav" not in html and "<html" not in html and "<tbody" in html
        assert f'data-queue-id="{floor["default_a"].pk}" data-active="5" data-unassigned="5" data-breaching="1"' in html

    def test_the_query_count_does_not_grow_with_the_page_or_the_data(
        self, otp_client, agent, floor, tenant_a, django_assert_max_num_queries, monkeypatch
    ):
        url = page_url(floor["default_a"])
        otp_client.get(url)  # warm: content types the process keeps (guardian's permission lookup)
        # Session, user, device, the user's tenant access (roles and their permissions: the top bar,
        # may work), their queues with their tenants' others, counts, the page (the customer searched
        # for and each row's open case inside it), the audit record: 8, the budget, on both
        # databases (PostgreSQL's audit INSERT, on a cursor of its own, is logged as Django's are).
        with django_assert_max_num_queries(8) as few:
            otp_client.get(url, {"customer": "acct-ann"})
        customer = CustomerFactory(tenant=tenant_a, external_id="acct-many")
        for n in range(60):
            AlertFactory(customer=customer, severity=1 + n % 4, type=AlertType.LOGIN if n % 2 else AlertType.PASSWORD)
        other = make_staff("other", role=Role.AGENT, tenants=[tenant_a])
        for alert in Alert.objects.filter(customer=customer)[:20]:
            alert_claim(alert=alert, actor=other)
        with django_assert_max_num_queries(len(few.captured_queries)) as many:
            response = otp_client.get(url, {"customer": "acct-many"})
        assert len(row_ids(response)) == 50
        # A list never decrypts personal data: the customers' encrypted contacts are not even read.
        sql = " ".join(q["sql"] for q in many.captured_queries)
        assert "cu.email_masked" in sql  # the page's statement (desk.queue_reads) calls customers `cu`
        assert not re.search(r'(?:"alerts_customer"\."|\bcu\.)(?:email|phone|display_name)(?!_masked)', sql)
        with django_assert_max_num_queries(len(few.captured_queries)):
            otp_client.get(rows_url(floor["default_a"]), {"customer": "acct-many"})


class TestClaimAndNext:
    def test_claim_takes_the_alert_records_it_and_returns_to_the_queue_with_its_filters(self, otp_client, agent, floor):
        response = otp_client.post(
            claim_url(floor["default_a"], floor["high-later"]), {"return_query": "severity=3&bogus=1"}
        )
        assert response.status_code == 302 and response["Location"] == page_url(floor["default_a"]) + "?severity=3"
        assert Alert.objects.get(pk=floor["high-later"].pk).assignee == agent
        record = AuditEvent.objects.get(action=Action.UPDATE, target_id=str(floor["high-later"].pk))
        assert record.actor == agent and record.changes["assignee"]["after"] == "agent"
        assert "is yours" in otp_client.get(response["Location"]).content.decode()

    def test_claim_of_an_alert_someone_holds_answers_409_with_the_message(self, otp_client, supervisor, floor):
        alert_claim(alert=floor["high-later"], actor=supervisor)
        response = otp_client.post(claim_url(floor["default_a"], floor["high-later"]))
        assert response.status_code == 409
        assert "supervisor holds this alert." in response.content.decode()
        assert Alert.objects.get(pk=floor["high-later"].pk).assignee == supervisor

    def test_claim_refuses_foreign_ungranted_missing_and_other_queues_alerts_with_404(self, otp_client, floor):
        cases = [
            (floor["default_a"], floor["foreign"]),  # another tenant's alert
            (floor["default_a"], floor["takeover-alert"]),  # in an ungranted queue of the tenant
            (floor["default_a"], floor["resolved"]),  # final
            (floor["takeover"], floor["takeover-alert"]),  # an ungranted queue
            (floor["default_b"], floor["foreign"]),  # another tenant's queue
        ]
        assert [otp_client.post(claim_url(q, a)).status_code for q, a in cases] == [404] * 5
        assert not Alert.objects.filter(assignee__isnull=False).exists()

    def test_claim_and_next_refuse_a_role_that_may_not_work_alerts_get_and_no_csrf(self, admin_user, agent, floor):
        client = verified_client(admin_user)
        assert client.post(claim_url(floor["default_a"], floor["high-later"])).status_code == 403
        assert client.post(next_url(floor["default_a"])).status_code == 403
        agent_client = verified_client(agent)
        assert agent_client.get(claim_url(floor["default_a"], floor["high-later"])).status_code == 405
        assert agent_client.get(next_url(floor["default_a"])).status_code == 405
        strict = Client(enforce_csrf_checks=True)
        strict.cookies = agent_client.cookies
        assert strict.post(next_url(floor["default_a"])).status_code == 403
        assert not Alert.objects.filter(assignee__isnull=False).exists()

    def test_next_claims_the_best_alert_and_opens_it_then_says_when_nothing_is_left(self, otp_client, agent, floor):
        for expected in floor["order"]:
            response = otp_client.post(next_url(floor["default_a"]))
            assert response.status_code == 302 and response["Location"] == f"/alerts/{expected}/"
            assert Alert.objects.get(pk=expected).assignee == agent
        response = otp_client.post(next_url(floor["default_a"]), {"return_query": "mine=on"})
        assert response.status_code == 302 and response["Location"] == page_url(floor["default_a"]) + "?mine=1"
        assert "Nothing left to claim in this queue" in otp_client.get(response["Location"]).content.decode()
        assert AuditEvent.objects.filter(actor=agent, action=Action.UPDATE, target_type="alerts.alert").count() == 5

    def test_next_in_a_queue_the_user_cannot_see_is_404(self, otp_client, floor):
        assert otp_client.post(next_url(floor["takeover"])).status_code == 404
        assert otp_client.post(next_url(floor["default_b"])).status_code == 404


class TestHome:
    def test_a_user_with_queues_goes_to_the_first_one(self, otp_client, floor):
        response = otp_client.get("/")
        assert response.status_code == 302 and response["Location"] == page_url(floor["default_a"])

    def test_a_user_without_queues_is_told_so(self, tenant_b, floor):
        idle = make_staff("idle-b", role=Role.AGENT, tenants=[tenant_b])  # a membership, no grant
        html = verified_client(idle).get("/").content.decode()
        assert "You have no queues yet: ask a supervisor to grant you one" in html


def test_position_of_a_row_round_trips(floor):
    alert = Alert.objects.get(pk=floor["high-no-due"].pk)
    assert QueuePosition.decode(QueuePosition.of(alert).encode()) == QueuePosition.of(alert)


class TestRowsShowTheirCase:
    """A row whose alert is in an open case links to it (the customer's "No, it wasn't me" opens one,
    and the page refetches its rows on the case's live signal), only when the reader may see the case."""

    @staticmethod
    def disown(alert):
        from django.db import transaction

        from alerts.signals import alert_disowned

        with transaction.atomic():
            alert_disowned.send(sender=Alert, alert_id=alert.pk)

    def test_an_alert_in_an_open_case_links_to_it_and_others_do_not(self, otp_client, floor):
        from desk.models import Case

        self.disown(floor["high-later"])
        case = Case.objects.get(customer__external_id="acct-bob", tenant=floor["high-later"].tenant)
        for url in (page_url(floor["default_a"]), rows_url(floor["default_a"])):
            html = otp_client.get(url).content.decode()
            assert f'href="/cases/{case.pk}/"' in row_of_html(html, floor["high-later"])
            assert f"Case #{case.pk} · not me" in row_of_html(html, floor["high-later"])
            assert "row-case" not in row_of_html(html, floor["high-soon"])
        Case.objects.filter(pk=case.pk).update(status="resolved", outcome="account_secured", closed_at=timezone.now())
        assert "row-case" not in row_of_html(
            otp_client.get(page_url(floor["default_a"])).content.decode(), floor["high-later"]
        )

    def test_a_case_the_reader_may_not_see_is_not_named(self, otp_client, floor, tenant_a):
        from desk.models import Case

        self.disown(floor["takeover-alert"])  # ann's case opens in the takeover queue, not granted to the agent
        self.disown(floor["low-overdue"])  # ann's alert of the default queue joins it
        case = Case.objects.get(customer__external_id="acct-ann", tenant=tenant_a)
        assert set(case.alerts.values_list("pk", flat=True)) == {floor["takeover-alert"].pk, floor["low-overdue"].pk}
        html = otp_client.get(page_url(floor["default_a"])).content.decode()
        assert floor["low-overdue"].pk in [int(i) for i in re.findall(r'data-alert-id="(\d+)"', html)]
        assert "row-case" not in row_of_html(html, floor["low-overdue"]) and f"/cases/{case.pk}/" not in html
        supervisor = verified_client(make_staff("sup.rows", role=Role.SUPERVISOR, tenants=[tenant_a]))
        assert f"Case #{case.pk}" in row_of_html(
            supervisor.get(page_url(floor["default_a"])).content.decode(), floor["low-overdue"]
        )


def row_of_html(html: str, alert) -> str:
    match = re.search(rf'<tr[^>]*data-alert-id="{alert.pk}".*?</tr>', html, re.S)
    assert match, f"no row for alert {alert.pk}"
    return match.group(0)
