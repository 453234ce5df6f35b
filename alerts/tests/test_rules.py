"""The rules: what client text they quote fits its column, odd dates do not stop them, their
settings are checked against what each declares, and a new rule needs no change to the engine."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from alerts import rules
from alerts.detection import events_process
from alerts.models import AccountEvent, Alert, AlertType, EventDeadLetter, EventType, RuleSetting, Severity
from alerts.rules import RULES, Needs, Param, Rule
from alerts.services import rule_setting_set
from alerts.tests.test_detection import _ingest, alerts, feed
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

WORKSPACE_SCOPES = [
    "https://www.googleapis.com/auth/contacts",
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/calendar.events.write",
    "https://graph.microsoft.com/Mail.ReadWrite",
]


class TestClientTextFitsItsColumn:
    def test_a_long_third_party_reason_raises_its_alert_cut_with_an_ellipsis(self, tenant_a):
        ids = _ingest(
            tenant_a,
            [
                ("third_party.authorized", 0, "alice",
                 {"app_name": "Workspace Mail & Contacts Sync", "scopes": WORKSPACE_SCOPES}),
                ("mfa.disabled", 1, "bob", {}),  # the rest of the chunk goes on
            ],
        )  # fmt: skip
        assert events_process(event_ids=ids) == 2
        (alert,) = alerts(rule="third_party")
        assert alert.severity == Severity.HIGH
        assert len(alert.reason) == Alert._meta.get_field("reason").max_length and alert.reason.endswith("…")
        assert alert.reason.startswith("Workspace Mail & Contacts Sync was given access to this account with broad")
        assert alerts(rule="mfa_change") and not EventDeadLetter.objects.exists()

    def test_the_fold_of_a_long_reason_fits_too(self, tenant_a):
        for minute in range(2):
            feed(tenant_a, "third_party.authorized", minutes=minute, app_name="W" * 120, scopes=WORKSPACE_SCOPES)
        (alert,) = alerts()
        assert alert.count == 2 and len(alert.reason) == 300

    def test_every_rule_is_cut_where_findings_become_alerts(self, tenant_a, monkeypatch):
        """Not per rule: a rule of tomorrow that quotes a long value is cut too."""
        monkeypatch.setattr(rules.MfaChangeRule, "check", lambda self, check: [self.finding(check, "x" * 1000)])
        feed(tenant_a, "mfa.disabled")
        (alert,) = alerts()
        assert alert.reason == "x" * 299 + "…"

    def test_a_long_subject_keeps_a_distinct_key_that_fits(self, tenant_a, monkeypatch):
        def check(self, check):
            return [self.finding(check, "long", subject="s" * 300 + check.event.context["factor"])]

        monkeypatch.setattr(rules.MfaChangeRule, "check", check)
        feed(tenant_a, "mfa.disabled", factor="a")
        feed(tenant_a, "mfa.disabled", factor="b")
        keys = [a.dedupe_key for a in alerts()]
        assert len(keys) == 2 and len(set(keys)) == 2 and all(len(k) <= 200 for k in keys)


class TestOddDates:
    def test_an_event_of_year_1_raises_its_alert(self, tenant_a):
        ids = _ingest(tenant_a, [("mfa.disabled", 0, "alice", {}), ("password.changed", 1, "alice", {})])
        # Stored as it was before ingestion refused such dates (an older row, or another path).
        AccountEvent.objects.filter(pk=ids[0]).update(occurred_at=datetime(1, 1, 1, tzinfo=UTC))
        assert events_process(event_ids=ids) == 2
        assert sorted(a.rule for a in alerts()) == ["mfa_change", "password_change"]
        assert not EventDeadLetter.objects.exists()


class TestRuleSettings:
    def test_a_valid_setting_is_stored_audited_and_used(self, tenant_a, admin_user):
        setting = rule_setting_set(
            tenant=tenant_a, rule="brute_force", actor=admin_user, severity=Severity.CRITICAL, params={"threshold": 2}
        )
        assert (setting.severity, setting.params) == (Severity.CRITICAL, {"threshold": 2})
        record = AuditEvent.objects.get(target_type="alerts.rulesetting", target_id=str(setting.pk))
        assert record.action == "create" and record.changes["threshold"] == {"before": None, "after": 2}
        feed(tenant_a, "login.failed")
        feed(tenant_a, "login.failed", minutes=1)
        assert [(a.rule, a.severity) for a in alerts()] == [("brute_force", Severity.CRITICAL)]
        rule_setting_set(tenant=tenant_a, rule="brute_force", actor=admin_user, enabled=False)
        assert RuleSetting.objects.get().enabled is False
        assert AuditEvent.objects.filter(target_type="alerts.rulesetting", action="update").count() == 1

    @pytest.mark.parametrize(
        "rule, params, field",
        [
            ("brute_force", {"threshold": "5"}, "threshold"),  # a string
            ("brute_force", {"threshold": True}, "threshold"),  # a bool is not a number here
            ("brute_force", {"threshold": 0}, "threshold"),  # out of range
            ("brute_force", {"window_minutes": 10**9}, "window_minutes"),  # would overflow a date
            ("transaction_outlier", {"multiplier": 2.5}, "multiplier"),  # Decimal * float fails in the worker
            ("third_party", {"broad_scopes": "mail"}, "broad_scopes"),  # not a list
            ("third_party", {"broad_scopes": ["mail", 3]}, "broad_scopes"),
            ("new_location", {"anonymizer_networks": [""]}, "anonymizer_networks"),
            ("brute_force", {"treshold": 5}, "params"),  # unknown
            ("brute_force", ["threshold", 5], "params"),
        ],
    )
    def test_a_wrong_setting_is_refused_not_discovered_by_the_worker(self, tenant_a, admin_user, rule, params, field):
        with pytest.raises(ValidationError) as refused:
            rule_setting_set(tenant=tenant_a, rule=rule, actor=admin_user, params=params)
        assert field in refused.value.message_dict
        assert not RuleSetting.objects.exists()

    @pytest.mark.parametrize(
        "changes, field",
        [({"rule": "no_such_rule"}, "rule"), ({"severity": 9}, "severity"), ({"enabled": "yes"}, "enabled")],
    )
    def test_an_unknown_rule_severity_or_switch_is_refused(self, tenant_a, admin_user, changes, field):
        with pytest.raises(ValidationError) as refused:
            rule_setting_set(**{"tenant": tenant_a, "rule": "mfa_change", "actor": admin_user, **changes})
        assert field in refused.value.message_dict

    def test_a_bad_setting_stored_before_the_checks_is_ignored_not_run(self, tenant_a):
        RuleSetting.objects.create(tenant=tenant_a, rule="transaction_outlier", params={"multiplier": 2.5})
        for n, amount in enumerate(["40.00", "41.00", "39.00", "4000.00"]):
            feed(tenant_a, "transaction.created", minutes=n, amount=amount, currency="EUR")
        (alert,) = alerts()
        assert alert.rule == "transaction_outlier" and not EventDeadLetter.objects.exists()

    def test_every_rule_declares_its_parameters_and_its_defaults_are_valid(self):
        for key, rule in RULES.items():
            assert rule.key == key and (rule.events or rule.follows), key
            assert rule.params_clean(rule.defaults) == rule.defaults, key


class TestOpenForExtension:
    def test_a_new_rule_is_one_class_and_one_registry_line(self, tenant_a, monkeypatch):
        class NightOwlRule(Rule):
            """Raises on the third failed login within the declared window (reads history)."""

            key = "night_owl"
            alert_type = AlertType.SUSPICIOUS
            events = frozenset({EventType.LOGIN_FAILED})
            params = {"window_minutes": Param(30)}

            def needs(self, params):
                return Needs(history=(frozenset({EventType.LOGIN_FAILED}), timedelta(minutes=params["window_minutes"])))

            def check(self, check):
                if len(check.recent({EventType.LOGIN_FAILED}, timedelta(minutes=30))) < 3:
                    return []
                return [self.finding(check, "Three failed logins in half an hour.")]

        class FollowerRule(Rule):
            """Follows the new rule, the way escalation follows the account rules."""

            key = "night_owl_escalation"
            alert_type = AlertType.ACCOUNT_TAKEOVER
            follows = frozenset({"night_owl"})

            def check(self, check):
                assert [f.rule for f in check.findings] == ["night_owl"]
                return [self.finding(check, "Escalated.", severity=Severity.CRITICAL)]

        monkeypatch.setitem(RULES, NightOwlRule.key, NightOwlRule())
        monkeypatch.setitem(RULES, FollowerRule.key, FollowerRule())
        for minute in range(3):
            feed(tenant_a, "login.failed", minutes=minute * 10)
        assert [(a.rule, a.severity) for a in alerts()] == [
            ("night_owl", Severity.MEDIUM),
            ("night_owl_escalation", Severity.CRITICAL),
        ]

    def test_escalation_is_a_rule_a_tenant_turns_off_like_any_other(self, tenant_a, admin_user):
        rule_setting_set(tenant=tenant_a, rule="account_takeover", actor=admin_user, enabled=False)
        feed(tenant_a, "login.succeeded", device_id="usual")
        feed(tenant_a, "login.succeeded", minutes=100, device_id="attacker")
        feed(tenant_a, "password.changed", minutes=103)
        feed(tenant_a, "mfa.disabled", minutes=106)
        assert not alerts(type=AlertType.ACCOUNT_TAKEOVER) and len(alerts()) == 3


def test_rules_and_the_alert_book_do_not_import_each_other():
    import ast
    import pathlib

    package = pathlib.Path(rules.__file__).parent
    for path in [*package.glob("*.py"), package.parent / "findings.py"]:
        imported = {node.module for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)}
        assert "alerts.raising" not in imported and "alerts.detection" not in imported, path
    raising = ast.parse((package.parent / "raising.py").read_text())
    assert not any(
        isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("alerts.rules") for n in ast.walk(raising)
    )
