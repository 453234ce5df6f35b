"""A stand-in for the client companies' systems, for the demo (`make demo-client`, development only).

The desk sends account actions (lock, force a password reset, ...) to each tenant's signed webhook
(contract staff-api.md): in production the client's endpoint. With `make run` alone no tenant has
one, so every action waits, retries and fails. This small HTTP server plays the client: it points
each demo tenant's action webhook at itself (through the audited `tenant_webhook_set`, which makes
a new secret it keeps in memory), checks every call's X-AlertDesk-Signature and timestamp as a
client must, answers 200 to a call it can verify and 401 to one it cannot, and prints one line per
call (the action and the account's external id: no personal data).

Knowledge questions (action `verify_knowledge`) are answered `{"match": true}` when every answer is
"demo", else `{"match": false}`: the demo's way to try a match and a mismatch.
"""

import hmac
import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from accounts.models import Tenant
from alerts.notifications.channels import push_signature
from desk.action_services import tenant_webhook_set

SIGNATURE_TOLERANCE_SECONDS = 300
KNOWLEDGE_ANSWER = "demo"


def _signature_ok(secret: str, stamp: str, body: bytes, signature: str) -> bool:
    """What a client checks: a fresh timestamp and the desk's own signature of it and the body."""
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(signature, push_signature(secret=secret, timestamp=stamp, body=body))


def _answer(body: dict) -> dict:
    if body.get("action") == "verify_knowledge":
        answers = body.get("answers") or {}
        return {"match": bool(answers) and all(value == KNOWLEDGE_ANSWER for value in answers.values())}
    return {"ok": True}


class DemoClient:
    """The server (not started): `secrets` maps a tenant's slug to the secret its calls are signed
    with; a call goes to /actions/<slug>. `say` gets one line per call."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8124, say: Callable[[str], None] = print):
        self.secrets: dict[str, str] = {}
        client = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                slug = self.path.removeprefix("/actions/").strip("/")
                raw = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 64 * 1024))
                secret = client.secrets.get(slug)
                ok = secret is not None and _signature_ok(
                    secret,
                    self.headers.get("X-AlertDesk-Timestamp", ""),
                    raw,
                    self.headers.get("X-AlertDesk-Signature", ""),
                )
                try:
                    body = json.loads(raw) if ok else {}
                except ValueError:
                    ok, body = False, {}
                answer = _answer(body) if ok else {"error": "unknown tenant or bad signature"}
                account = (body.get("account") or {}).get("external_id") or "-"
                say(f"{slug or '?'}: {body.get('action', '?')} for account {account}: "
                    f"{'signature checked, answered 200' if ok else 'refused (401)'} {answer}")  # fmt: skip
                data = json.dumps(answer).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # one line per call, printed above
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def take_over(self, tenants: list[Tenant]) -> list[str]:
        """Point these tenants' action webhooks here, each with a new secret; returns their URLs."""
        urls = []
        for tenant in tenants:
            url = f"{self.base_url}/actions/{tenant.slug}"
            self.secrets[tenant.slug] = tenant_webhook_set(tenant=tenant, url=url)
            urls.append(url)
        return urls
