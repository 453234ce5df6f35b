"""Detection: each alert type is raised by the events that should raise it, and not by ordinary
activity; de-duplication, escalation, tenant settings, and a crash mid-way."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from alerts.detection import events_process
from alerts.models import AccountEvent, Alert, AlertStatus, AlertType, RuleSetting, Severity
from alerts.services import events_ingest
from alerts.validation import validate_event
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
_ids = itertools.count()
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def feed(tenant, type_, *, minutes=0, account="alice", **context):
    """Ingest one event as the API would, then run detection on it."""
    raw = {
        "id": f"ev-{next(_ids)}",
        "type": type_,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "account": {"external_id": account},
        "context": context,
    }
    _, _, ids = events_ingest(tenant=tenant, events=[validate_event(raw, now=T0 + timedelta(days=30))])
    events_process(event_ids=ids)
    return AccountEvent.objects.get(pk=ids[0])


def alerts(**filters):
    return list(Alert.objects.filter(**filters).order_by("id"))


def usual_login(tenant, minutes=0, account="alice"):
    return feed(tenant, "login.succeeded", minutes=minutes, account=account, device_id="phone-1", user_agent=CHROME_WIN)


class TestLoginFromNewDevice:
    def test_a_new_device_raises_and_the_usual_one_does_not(self, tenant_a):
        usual_login(tenant_a)  # the first login teaches the account's device
        usual_login(tenant_a, minutes=60)
        assert alerts() == []
        event = feed(tenant_a, "login.succeeded", minutes=90, device_id="laptop-9", user_agent=FIREFOX_LINUX)
        (alert,) = alerts()
        assert alert.type == AlertType.LOGIN and alert.severity == Severity.MEDIUM
        assert alert.reason == (
            "Login from a device never seen on this account (Firefox on Linux), and a browser or system it has not "
            "used before."
        )
        assert list(alert.evidence.values_list("pk", flat=True)) == [event.pk]
        usual_login(tenant_a, minutes=120)
        feed(tenant_a, "login.succeeded", minutes=130, device_id="laptop-9", user_agent=FIREFOX_LINUX)  # now known
        assert len(alerts()) == 1 and alerts()[0].count == 1

    def test_without_a_device_id_the_user_agent_is_the_fingerprint(self, tenant_a):
        feed(tenant_a, "login.succeeded", user_agent=CHROME_WIN)
        feed(tenant_a, "login.succeeded", minutes=5, user_agent=CHROME_WIN)
        assert alerts() == []
        feed(tenant_a, "login.succeeded", minutes=9, user_agent=FIREFOX_LINUX)
        assert [a.type for a in alerts()] == [AlertType.LOGIN]


class TestSuspiciousActivity:
    def test_brute_force_after_five_failures_in_ten_minutes_once(self, tenant_a):
        for minute in range(4):
            feed(tenant_a, "login.failed", minutes=minute, reason="bad_password")
        assert alerts() == []
        feed(tenant_a, "login.failed", minutes=5, reason="bad_password")
        feed(tenant_a, "login.failed", minutes=6, reason="bad_password")
        (alert,) = alerts(rule="brute_force")
        assert alert.type == AlertType.SUSPICIOUS and alert.count == 2 and alert.evidence.count() == 6

    def test_spread_out_failures_are_ordinary(self, tenant_a):
        for n in range(6):
            feed(tenant_a, "login.failed", minutes=n * 30, reason="bad_password")
        assert alerts() == []

    def test_credential_stuffing_is_one_alert_per_source_not_per_account(self, tenant_a):
        for n in range(12):
            feed(tenant_a, "login.failed", minutes=n // 3, account=f"user-{n}", ip="198.51.100.7")
        (alert,) = alerts(rule="credential_stuffing")
        assert alert.customer is None and alert.count == 3
        assert alert.reason.startswith("Failed logins on 12 different accounts from one address")
        assert alert.dedupe_key == "credential_stuffing:source:198.51.100.7"
        assert not alerts(rule="brute_force")

    def test_rapid_email_and_phone_change(self, tenant_a):
        feed(tenant_a, "profile.changed", fields=["email"])
        assert [a.rule for a in alerts()] == ["contact_change"]  # every change is told (issue 10)
        feed(tenant_a, "profile.changed", minutes=20, fields=["phone", "address"])
        (alert,) = alerts(rule="rapid_profile_change")
        assert alert.evidence.count() == 2

    def test_changes_a_day_apart_are_not_rapid(self, tenant_a):
        feed(tenant_a, "profile.changed", fields=["email"])
        feed(tenant_a, "profile.changed", minutes=24 * 60, fields=["phone"])
        assert alerts(rule="rapid_profile_change") == []
        (alert,) = alerts(rule="contact_change")  # each change folds into the one active alert
        assert alert.count == 2 and alert.reason == "The account's phone number changed."

    def test_one_contact_change_is_an_alert_and_other_profile_changes_are_not(self, tenant_a):
        feed(tenant_a, "profile.changed", fields=["address", "name"])
        assert alerts() == []
        feed(tenant_a, "profile.changed", minutes=1, fields=["name", "email"])
        (alert,) = alerts(rule="contact_change")
        assert (alert.type, alert.severity) == ("suspicious", Severity.MEDIUM)
        assert alert.reason == "The account's email address changed."

    def test_a_transaction_far_above_the_accounts_history(self, tenant_a):
        for n, amount in enumerate(["40.00", "55.10", "38.00", "61.00"]):
            feed(tenant_a, "transaction.created", minutes=n, amount=amount, currency="EUR", payee="Shop")
        feed(tenant_a, "transaction.created", minutes=10, amount="90.00", currency="EUR")
        assert alerts() == []  # within the account's habits
        feed(tenant_a, "transaction.created", minutes=20, amount="4800.00", currency="EUR", payee="New payee")
        (alert,) = alerts(rule="transaction_outlier")
        assert alert.severity == Severity.HIGH and "4800.00 EUR" in alert.reason

    def test_no_history_means_no_outlier(self, tenant_a):
        feed(tenant_a, "transaction.created", amount="9000.00", currency="EUR")
        assert alerts() == []


class TestPassword:
    def test_password_change_is_medium_but_high_right_after_a_new_device(self, tenant_a):
        usual_login(tenant_a)
        feed(tenant_a, "password.changed", minutes=10, initiated_by="user")
        assert [(a.type, a.severity) for a in alerts()] == [(AlertType.PASSWORD, Severity.MEDIUM)]
        Alert.objects.update(status=AlertStatus.RESOLVED)
        feed(tenant_a, "login.succeeded", minutes=100, device_id="unknown", user_agent=FIREFOX_LINUX)
        feed(tenant_a, "password.changed", minutes=105, initiated_by="reset_flow")
        latest = alerts(rule="password_change", status="open")[0]
        assert latest.severity == Severity.HIGH and latest.reason.endswith("right after a login from a new device.")

    def test_reset_request_is_low(self, tenant_a):
        feed(tenant_a, "password.reset_requested", channel="email")
        assert [(a.type, a.severity) for a in alerts()] == [(AlertType.PASSWORD, Severity.LOW)]


class TestTwoFactor:
    def test_disabled_is_high_and_added_is_medium(self, tenant_a):
        feed(tenant_a, "mfa.disabled", factor="totp")
        feed(tenant_a, "mfa.enrolled", factor="sms", account="bob")
        assert [(a.type, a.severity) for a in alerts()] == [
            (AlertType.TWO_FACTOR, Severity.HIGH),
            (AlertType.TWO_FACTOR, Severity.MEDIUM),
        ]

    def test_repeated_challenge_failures(self, tenant_a):
        feed(tenant_a, "mfa.challenge_failed", factor="totp")
        feed(tenant_a, "mfa.challenge_failed", minutes=1, factor="totp")
        assert alerts() == []
        feed(tenant_a, "mfa.challenge_failed", minutes=2, factor="totp")
        assert [a.rule for a in alerts()] == ["mfa_failures"]

    def test_an_otp_nobody_asked_for(self, tenant_a):
        feed(tenant_a, "login.failed", reason="bad_password")
        feed(tenant_a, "mfa.otp_sent", minutes=1, channel="sms")  # asked for by the sign-in
        assert alerts() == []
        feed(tenant_a, "mfa.otp_sent", minutes=90, channel="sms")
        (alert,) = alerts(rule="otp_unrequested")
        assert alert.reason == "A one-time code was sent by sms that no sign-in or reset of this account asked for."


class TestRecovery:
    def test_recovery_is_raised_higher_after_a_contact_change(self, tenant_a):
        feed(tenant_a, "recovery.requested", channel="email")
        assert [(a.type, a.severity) for a in alerts()] == [(AlertType.RECOVERY, Severity.MEDIUM)]
        feed(tenant_a, "profile.changed", account="carol", fields=["email"])
        feed(tenant_a, "recovery.completed", minutes=30, account="carol", channel="email")
        alert = alerts(customer__external_id="carol", type=AlertType.RECOVERY)[0]
        assert alert.severity == Severity.HIGH and alert.evidence.count() == 2


class TestThirdParty:
    def test_a_new_app_and_broad_scopes(self, tenant_a):
        feed(tenant_a, "third_party.authorized", app_name="Calendar Sync", app_id="cal", scopes=["calendar.read"])
        feed(tenant_a, "third_party.authorized", account="bob", app_name="Mega Tool", scopes=["mail.read", "admin"])
        narrow, broad = alerts()
        assert (narrow.type, narrow.severity) == (AlertType.THIRD_PARTY, Severity.MEDIUM)
        assert broad.severity == Severity.HIGH and "mail.read, admin" in broad.reason


class TestOrdinaryActivity:
    def test_a_normal_week_raises_nothing(self, tenant_a):
        for day in range(7):
            base = day * 24 * 60
            usual_login(tenant_a, minutes=base)
            feed(tenant_a, "login.failed", minutes=base + 1, reason="bad_password")
            usual_login(tenant_a, minutes=base + 2)
            feed(tenant_a, "transaction.created", minutes=base + 30, amount=f"{40 + day}.00", currency="EUR")
        assert alerts() == []


class TestEscalation:
    def test_new_device_then_password_then_mfa_off_is_one_takeover_alert(self, tenant_a):
        usual_login(tenant_a)
        feed(tenant_a, "login.succeeded", minutes=100, device_id="attacker", user_agent=FIREFOX_LINUX)
        feed(tenant_a, "password.changed", minutes=103)
        assert not alerts(type=AlertType.ACCOUNT_TAKEOVER)
        feed(tenant_a, "mfa.disabled", minutes=106, factor="totp")
        (takeover,) = alerts(type=AlertType.ACCOUNT_TAKEOVER)
        assert takeover.severity == Severity.CRITICAL
        assert set(takeover.related.values_list("rule", flat=True)) == {"new_device", "password_change", "mfa_change"}
        assert takeover.evidence.count() == 3
        feed(tenant_a, "recovery.requested", minutes=110)
        assert len(alerts(type=AlertType.ACCOUNT_TAKEOVER)) == 1  # updated, not a second one


class TestSettingsAndLifecycle:
    def test_a_tenant_can_turn_a_rule_off_or_change_its_threshold_and_severity(self, tenant_a, tenant_b):
        RuleSetting.objects.create(tenant=tenant_a, rule="mfa_change", enabled=False)
        RuleSetting.objects.create(
            tenant=tenant_b, rule="brute_force", severity=Severity.CRITICAL, params={"threshold": 2}
        )
        feed(tenant_a, "mfa.disabled")
        feed(tenant_b, "login.failed")
        feed(tenant_b, "login.failed", minutes=1)
        assert [(a.tenant_id, a.rule, a.severity) for a in alerts()] == [
            (tenant_b.pk, "brute_force", Severity.CRITICAL)
        ]

    def test_a_resolved_alert_is_not_reopened_a_new_one_is_raised(self, tenant_a):
        feed(tenant_a, "mfa.disabled")
        Alert.objects.update(status=AlertStatus.RESOLVED)
        feed(tenant_a, "mfa.disabled", minutes=5)
        assert [a.status for a in alerts()] == [AlertStatus.RESOLVED, AlertStatus.OPEN]

    def test_alerts_are_audited_and_announced_without_personal_data(self, tenant_a, django_capture_on_commit_callbacks):
        from unittest import mock

        with (
            mock.patch("config.push.tenant_events") as announce,
            django_capture_on_commit_callbacks(execute=True),
        ):
            feed(tenant_a, "mfa.disabled")
        alert = Alert.objects.get()
        record = AuditEvent.objects.get(target_type="alerts.alert", target_id=str(alert.pk))
        assert record.action == "create" and record.tenant_id == tenant_a.pk and record.origin == "system"
        announce.assert_called_once_with(
            [
                (
                    tenant_a.pk,
                    "alert.created",
                    {
                        "id": alert.pk,
                        "type": "two_factor",
                        "severity": 3,
                        "status": "open",
                        "assignee": None,
                        "count": 1,
                    },
                )
            ]
        )

    def test_a_chunk_announces_once_after_commit_each_alert_with_its_latest_count(
        self, tenant_a, django_capture_on_commit_callbacks
    ):
        from unittest import mock

        ids = _ingest(tenant_a, [("login.failed", m, "alice", {}) for m in range(7)] + [("mfa.disabled", 8, "bob", {})])
        with mock.patch("config.push.tenant_events") as announce:
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                events_process(event_ids=ids)
            announce.assert_not_called()  # nothing is pushed before the chunk commits
            for callback in callbacks:
                callback()
        (messages,) = announce.call_args.args
        brute, mfa = Alert.objects.get(rule="brute_force"), Alert.objects.get(rule="mfa_change")
        shown = {"severity": 3, "status": "open", "assignee": None}
        assert sorted(messages, key=lambda m: m[2]["id"]) == sorted(
            [
                (tenant_a.pk, "alert.created", {**shown, "id": brute.pk, "type": "suspicious", "count": 3}),
                (tenant_a.pk, "alert.created", {**shown, "id": mfa.pk, "type": "two_factor", "count": 1}),
            ],
            key=lambda m: m[2]["id"],
        )

    def test_a_fold_that_raises_the_severity_announces_the_previous_one_and_the_holder(
        self, tenant_a, agent, django_capture_on_commit_callbacks
    ):
        """The desk places alerts in queues by severity: a rise may move an alert out of a queue,
        so the announcement says what it was; and it names who holds the alert, as claims do."""
        from unittest import mock

        feed(tenant_a, "mfa.disabled")
        Alert.objects.update(severity=Severity.LOW, assignee=agent)  # held, and lower than a new finding
        with (
            mock.patch("config.push.tenant_events") as announce,
            django_capture_on_commit_callbacks(execute=True),
        ):
            feed(tenant_a, "mfa.disabled", minutes=5)
        alert = Alert.objects.get()
        ((tenant_id, name, payload),) = announce.call_args.args[0]
        assert (tenant_id, name) == (tenant_a.pk, "alert.updated")
        assert payload == {"id": alert.pk, "type": "two_factor", "severity": 3, "previous_severity": 1,
                           "status": "open", "assignee": "agent", "count": 2}  # fmt: skip


def test_processing_killed_mid_way_then_rerun_yields_each_alert_once(tenant_a, monkeypatch):
    raws = [
        {
            "id": f"k{n}",
            "type": t,
            "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
            "account": {"external_id": "k"},
        }
        for n, t in enumerate(["mfa.disabled", "recovery.requested", "third_party.authorized"])
    ]
    _, _, ids = events_ingest(tenant=tenant_a, events=[validate_event(r, now=T0 + timedelta(days=1)) for r in raws])

    from alerts import rules

    original = rules.RecoveryRule.check

    def crash(self, check):
        raise SystemExit("worker killed")

    monkeypatch.setattr(rules.RecoveryRule, "check", crash)
    with pytest.raises(SystemExit):
        events_process(event_ids=ids)
    assert alerts() == []  # the chunk rolled back whole: nothing half-done
    monkeypatch.setattr(rules.RecoveryRule, "check", original)
    assert events_process(event_ids=ids) == 3
    assert events_process(event_ids=ids) == 0
    assert sorted(a.rule for a in alerts()) == ["mfa_change", "recovery", "third_party"]
    assert all(a.count == 1 for a in alerts())


US_IP, GB_IP, US_IP_2 = "8.8.8.8", "81.2.69.160", "8.8.4.4"


class TestLocation:
    def test_a_new_country_is_raised_and_the_usual_one_is_not(self, tenant_a):
        feed(tenant_a, "login.succeeded", ip=US_IP, device_id="d")
        feed(tenant_a, "login.succeeded", minutes=600, ip=US_IP_2, device_id="d")
        assert alerts() == []
        feed(tenant_a, "login.succeeded", minutes=2 * 24 * 60, ip=GB_IP, device_id="d")
        (alert,) = alerts()
        assert alert.type == AlertType.LOCATION and alert.rule == "new_location"
        assert alert.reason == "Login from a country never seen on this account (GB through Andrews & Arnold Ltd)."

    def test_impossible_travel(self, tenant_a):
        feed(tenant_a, "login.succeeded", ip=US_IP, device_id="d")
        feed(tenant_a, "login.succeeded", minutes=30, ip=GB_IP, device_id="d")
        travel = [a for a in alerts() if a.reason.startswith("Impossible travel")]
        assert (
            len(travel) == 1 and travel[0].severity == Severity.HIGH and "(US to GB) in 30 minutes" in travel[0].reason
        )
        assert travel[0].evidence.count() == 2

    def test_the_events_own_geo_wins_and_nearby_pairs_are_geolocation_error(self, tenant_a):
        paris, versailles = {"country": "FR", "lat": 48.86, "lon": 2.35}, {"country": "FR", "lat": 48.80, "lon": 2.13}
        feed(tenant_a, "login.succeeded", ip=US_IP, geo=paris, device_id="d")
        feed(tenant_a, "login.succeeded", minutes=1, ip=GB_IP, geo=versailles, device_id="d")  # ~17 km
        assert [a.reason for a in alerts() if "travel" in a.reason] == []
        feed(tenant_a, "login.succeeded", minutes=5, geo={"country": "JP", "lat": 35.68, "lon": 139.69}, device_id="d")
        assert any(a.reason.startswith("Impossible travel") for a in alerts())

    def test_known_anonymizer_networks_are_not_travel(self, tenant_a):
        RuleSetting.objects.create(
            tenant=tenant_a, rule="new_location", params={"anonymizer_networks": ["Andrews & Arnold"]}
        )
        feed(tenant_a, "login.succeeded", ip=US_IP, device_id="d")
        feed(tenant_a, "login.succeeded", minutes=30, ip=GB_IP, device_id="d")
        assert not any("travel" in a.reason for a in alerts())

    def test_private_addresses_are_not_located(self, tenant_a):
        feed(tenant_a, "login.succeeded", ip="10.1.2.3", device_id="d")
        feed(tenant_a, "login.succeeded", minutes=1, ip="192.168.1.4", device_id="d")
        assert alerts() == []


def _ingest(tenant, items):
    """Store several events in one batch, as one request would, without processing them."""
    raws = [
        {"id": f"ev-{next(_ids)}", "type": t, "occurred_at": (T0 + timedelta(minutes=m)).isoformat(),
         "account": {"external_id": account}, "context": context}
        for t, m, account, context in items
    ]  # fmt: skip
    _, _, ids = events_ingest(tenant=tenant, events=[validate_event(r, now=T0 + timedelta(days=30)) for r in raws])
    return ids


class TestChunks:
    """A chunk of events is judged event by event in time order, each seeing those before it."""

    def test_a_burst_in_one_chunk_raises_brute_force_at_the_fifth_failure(self, tenant_a):
        ids = _ingest(tenant_a, [("login.failed", m, "alice", {}) for m in range(6)])
        events_process(event_ids=ids)
        (alert,) = alerts()
        assert alert.rule == "brute_force" and alert.count == 2  # raised by the 5th, folded by the 6th
        assert alert.evidence.count() == 6

    def test_a_burst_of_stuffing_in_one_chunk_is_one_alert(self, tenant_a):
        ids = _ingest(tenant_a, [("login.failed", 0, f"victim-{n}", {"ip": "198.51.100.7"}) for n in range(12)])
        events_process(event_ids=ids)
        (alert,) = [a for a in alerts() if a.rule == "credential_stuffing"]
        assert alert.count == 3 and alert.customer_id is None  # the 10th, 11th and 12th account

    def test_an_otp_after_a_login_in_the_same_chunk_is_ordinary(self, tenant_a):
        ids = _ingest(tenant_a, [("login.succeeded", 0, "alice", {"device_id": "d"}), ("mfa.otp_sent", 1, "alice", {})])
        events_process(event_ids=ids)
        assert alerts() == []

    def test_queries_do_not_grow_with_the_chunk(self, tenant_a, django_assert_max_num_queries):
        items = []
        for n in range(60):
            account = f"acct-{n}"
            items += [
                ("login.succeeded", n, account, {"device_id": "d", "ip": "8.8.8.8"}),
                ("mfa.otp_sent", n, account, {}),
                ("login.failed", n, account, {"ip": f"198.51.100.{n}"}),
                ("transaction.created", n, account, {"amount": "10.00", "currency": "EUR"}),
                ("profile.changed", n, account, {"fields": ["address"]}),
            ]
        ids = _ingest(tenant_a, items)
        # Events, tenants, configs, state rows (find, make, lock, save), history, sources, recent
        # alerts, mark processed: a fixed handful per chunk of 200, not a few per event.
        with django_assert_max_num_queries(13 * 2):
            events_process(event_ids=ids)
        assert AccountEvent.objects.filter(processed_at__isnull=True).count() == 0
        assert alerts() == []  # ordinary activity, first seen

    def test_a_burst_of_alerts_is_written_in_a_fixed_number_of_statements(
        self, tenant_a, django_assert_max_num_queries
    ):
        items = []
        for n in range(50):
            items += [("mfa.disabled", n, f"victim-{n}", {}), ("third_party.authorized", n, f"victim-{n}", {})]
        ids = _ingest(tenant_a, items)
        # + lock, SLA policies, insert, evidence, audit, seal; + the customers' notification settings
        # and contacts (critical alerts; these accounts have no address, so no notification to insert)
        with django_assert_max_num_queries(13 + 6 + 2):
            events_process(event_ids=ids)
        assert Alert.objects.count() == 100 and AuditEvent.objects.filter(target_type="alerts.alert").count() == 100
        assert {a.evidence.count() for a in Alert.objects.all()} == {1}
