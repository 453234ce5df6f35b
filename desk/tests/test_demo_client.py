"""The demo's stand-in for the clients' systems (`make demo-client`): it takes over the tenants'
action webhooks, confirms the actions whose signature it can check, refuses the others."""

import io
import json
import threading
import urllib.error
import urllib.request

import pytest
from django.core.management import CommandError, call_command

from alerts.notifications.channels import signed_headers
from desk.action_services import action_deliver, action_settings_for
from desk.demo_client import DemoClient
from desk.models import AccountAction, ActionState
from desk.tests.factories import account_actions_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client_stub():
    said: list[str] = []
    stub = DemoClient(port=0, say=said.append)
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    stub.said = said
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def _post(url: str, body: dict, secret: str) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    request = urllib.request.Request(url, data=raw, method="POST", headers=signed_headers(secret=secret, body=raw))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (a local test server)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_it_takes_over_the_webhook_and_confirms_a_real_action(client_stub, case_a, agent):
    (url,) = client_stub.take_over([case_a.tenant])
    assert (
        action_settings_for(tenant_id=case_a.tenant_id).webhook_url
        == url
        == (f"{client_stub.base_url}/actions/{case_a.tenant.slug}")
    )
    (action,) = account_actions_make(case_a, agent, ActionState.REQUESTED)
    assert action_deliver(action_id=action.pk) == "confirmed"
    assert AccountAction.objects.get(pk=action.pk).state == ActionState.CONFIRMED
    assert client_stub.said == [
        f"{case_a.tenant.slug}: lock for account {case_a.customer.external_id}: signature checked, answered 200 "
        "{'ok': True}"
    ]


def test_a_call_it_cannot_verify_is_refused(client_stub, tenant_a, tenant_b):
    (url,) = client_stub.take_over([tenant_a])
    secret = client_stub.secrets[tenant_a.slug]
    assert _post(url, {"action": "lock"}, "not-the-secret")[0] == 401
    assert _post(f"{client_stub.base_url}/actions/{tenant_b.slug}", {"action": "lock"}, secret)[0] == 401
    assert _post(url, {"action": "lock"}, secret) == (200, {"ok": True})
    refused = "refused (401) {'error': 'unknown tenant or bad signature'}"
    assert [line.endswith(refused) for line in client_stub.said] == [True, True, False]


def test_knowledge_answers_match_only_when_each_is_demo(client_stub, tenant_a):
    (url,) = client_stub.take_over([tenant_a])
    secret = client_stub.secrets[tenant_a.slug]
    ask = {"action": "verify_knowledge", "account": {"external_id": "acct-1"}}
    assert _post(url, {**ask, "answers": {"city": "demo", "pet": "demo"}}, secret) == (200, {"match": True})
    assert _post(url, {**ask, "answers": {"city": "demo", "pet": "cat"}}, secret) == (200, {"match": False})
    assert _post(url, {**ask, "answers": {}}, secret) == (200, {"match": False})


def test_the_command_refuses_unknown_tenants_and_production(settings):
    with pytest.raises(CommandError, match="No such tenant: nowhere"):
        call_command("demo_client", "nowhere", "--port", "0", stdout=io.StringIO())
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="refuses to run in production"):
        call_command("demo_client", stdout=io.StringIO())
