"""The demo data's queues, and the data migration that gave tenants made before queues their default."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.demo import seed_demo
from accounts.models import Tenant, User
from desk.models import Queue
from desk.selectors import queue_list_for


@pytest.mark.django_db
def test_demo_tenants_have_two_queues_and_agents_their_default_queues_idempotently(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    seed_demo("demo-password-long-enough")
    seed_demo("demo-password-long-enough")
    assert set(Queue.objects.values_list("tenant__slug", "slug")) == {
        (t, q) for t in ("acme-bank", "globex-telecom") for q in ("default", "takeover")
    }

    def queues(username):
        return set(queue_list_for(user=User.objects.get(username=username)).values_list("tenant__slug", "slug"))

    assert queues("agent.acme") == {("acme-bank", "default")}
    assert queues("agent.globex") == {("globex-telecom", "default")}
    assert queues("agent.both") == {("acme-bank", "default"), ("globex-telecom", "default")}
    assert len(queues("supervisor")) == 4


@pytest.mark.django_db
def test_demo_alerts_are_raised_by_the_pipeline_fill_several_queues_and_some_breach_their_sla(settings, tmp_path):
    from django.utils import timezone

    from alerts.models import AccountEvent, Alert, AlertType
    from desk.selectors import queue_counts, queue_siblings

    settings.BASE_DIR = tmp_path
    seed_demo("demo-password-long-enough")
    alerts = Alert.objects.all()
    for slug in ("acme-bank", "globex-telecom"):
        assert alerts.filter(tenant__slug=slug).count() >= 140
    assert set(alerts.values_list("type", flat=True)) == set(AlertType.values)  # every kind, takeovers too
    assert not AccountEvent.objects.filter(processed_at__isnull=True).exists()
    assert all(alert.evidence.exists() for alert in alerts[:20])  # raised by detection, with their events
    breaching = alerts.filter(sla_due_at__lt=timezone.now()).count()
    assert 0 < breaching < alerts.count()
    queues = list(Queue.objects.all())
    assert all(count["active"] > 0 for count in queue_counts(queues=queues, siblings=queue_siblings(queues)).values())
    raised = alerts.count()
    seed_demo("demo-password-long-enough")
    assert Alert.objects.count() == raised  # idempotent


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_gives_every_existing_tenant_a_default_queue():
    executor = MigrationExecutor(connection)
    executor.migrate([("desk", "0001_queue")])
    old = executor.loader.project_state([("desk", "0001_queue")]).apps
    old.get_model("accounts", "Tenant").objects.create(slug="before-queues", name="Old")
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    queue = Queue.objects.get(tenant=Tenant.objects.get(slug="before-queues"))
    assert (queue.slug, queue.is_default) == ("default", True)


@pytest.mark.django_db
def test_demo_tenants_have_a_few_cases_their_customers_opened(settings, tmp_path):
    from desk.models import Case, CaseOpenedVia

    settings.BASE_DIR = tmp_path
    seed_demo("demo-password-long-enough")
    seed_demo("demo-password-long-enough")
    for slug in ("acme-bank", "globex-telecom"):
        cases = Case.objects.filter(tenant__slug=slug)
        assert cases.count() == 4
        assert {c.opened_via for c in cases} == {CaseOpenedVia.CUSTOMER_ANSWER}
        assert all(c.alerts.exists() for c in cases)
