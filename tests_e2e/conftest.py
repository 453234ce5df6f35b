"""Browser fixtures: one headless Chromium per run, a fresh context and page per test, and a live server.

Playwright's plain sync API drives Debian's Chromium (no browser download, no pytest-playwright, no
pytest-asyncio). The desk runs in daphne, in a process of its own (`desk_server`), on the test database;
there is no Celery worker (the test settings run tasks eagerly, in the server's process). The server
logs at INFO to a file of its own (every request with its duration, the layer's and the flusher's
complaints), and a failed test's report shows what it logged during that test ("desk server log").
"""

import os

# Playwright's sync API runs an asyncio event loop in the test's thread, so Django's async-unsafe
# check would refuse the ORM calls the tests make there. Those calls are still plain synchronous
# calls (no coroutine touches the database), so the check is a false alarm here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from accounts import services  # noqa: E402
from accounts.models import Role  # noqa: E402
from accounts.testing import TEST_PASSWORD, make_staff  # noqa: E402
from audit.testing import allow_test_flush  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TENANT_NAME = "Acme Bank"
TIMEOUT_MS = 10_000

# Reports every CSP violation in the page to Python; init scripts are not subject to the page's CSP.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


@dataclass
class BrowserProblems:
    """What the browser complained about: console errors, uncaught page errors, CSP violations."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def on_console(self, msg) -> None:
        if msg.type != "error":
            return
        url = msg.location.get("url") or ""
        self.console_errors.append(f"{msg.text} ({url})" if url else msg.text)

    def all(self) -> list[str]:
        return self.console_errors + self.page_errors + self.csp_violations


@pytest.fixture(scope="session", autouse=True)
def _audit_tables_flushable():
    allow_test_flush()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """On SQLite, a test database in a file: the desk's server runs in another process (below)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("e2e") / "test.sqlite3")


def _log_to_file(path: Path) -> None:
    """In the server's process: everything at INFO into `path` (requests with their durations, the
    channel layer's and the live flusher's lines), the console left at the test settings' WARNING."""
    import logging

    from config.logging import RequestIdFilter

    class Formatter(logging.Formatter):  # the access log's duration is an extra field
        def format(self, record):
            text = super().format(record)
            duration = getattr(record, "duration_ms", None)
            return text if duration is None else f"{text} ({duration} ms)"

    handler = logging.FileHandler(path)
    handler.setFormatter(Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for console in root.handlers:
        console.setLevel(max(console.level, root.level))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _server_setup(blocker, log_path: Path) -> None:
    _log_to_file(log_path)
    _use_test_database(blocker)


def _use_test_database(blocker):
    """In the server's process: the test database, as the tests' process uses it, and open to it
    (the process is a fork of pytest's, where database access is blocked outside the tests)."""
    from django.conf import settings

    blocker.unblock()  # for the server's whole life: left entered on purpose
    # Between tests the database is flushed and its content types made again, under new ids; the
    # test process forgets its cached ones then (contenttypes' post_migrate), this process does
    # not, and guardian's grants would be looked for under the old ids ("no queues"). So the
    # server forgets them at every request (Django's cache and guardian's), as a fresh server would start.
    from django.contrib.contenttypes.models import ContentType
    from django.core.signals import request_started
    from guardian.shortcuts import clear_ct_cache  # guardian keeps its own (permission -> content type)

    def forget_content_types(**kwargs):
        ContentType.objects.clear_cache()
        clear_ct_cache()

    request_started.connect(forget_content_types, weak=False)
    database = settings.DATABASES["default"]
    if database["TEST"].get("NAME"):  # SQLite: the file made above (PostgreSQL's name is the test one already)
        database["NAME"] = database["TEST"]["NAME"]


_server_log: Path | None = None  # the desk server's log file, once it runs
_log_offset = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def desk_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """The desk as agents get it: daphne serving HTTP and the WebSocket (pytest-django's own live
    server speaks WSGI only, so the desk's live channel could not connect), in a process of its
    own, on the test database. The tests' data is committed (transactional_db), so it sees it."""
    global _server_log
    from functools import partial

    from channels.testing.live import make_application
    from daphne.testing import DaphneProcess
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()  # the server's process must not share this process's connections
    _server_log = tmp_path_factory.mktemp("desk-server") / "server.log"
    _server_log.touch()
    server = DaphneProcess(
        "localhost",
        partial(make_application, static_wrapper=ASGIStaticFilesHandler),
        setup=partial(_server_setup, django_db_blocker, _server_log),
    )
    server.start()
    while not server.ready.wait(timeout=1):
        if not server.is_alive():
            raise RuntimeError(f"the desk's server did not start: {server.errors.get()}")
    yield SimpleNamespace(url=f"http://localhost:{server.port.value}")
    server.terminate()
    server.join()


@pytest.fixture(scope="session")
def browser(desk_server):  # the server forks first: a child of Playwright's event loop cannot run Django's sync code
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_problems():
    return BrowserProblems()


@pytest.fixture
def new_page(browser, browser_problems, desk_server, transactional_db):
    """Pages in browser contexts of their own (one per person: separate cookies, so separate
    sessions), each reporting its problems to `browser_problems`. Closed after the test."""
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=desk_server.url, **options)
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        context.expose_function("__reportCspViolation", lambda report: browser_problems.csp_violations.append(report))
        context.add_init_script(_CSP_LISTENER)
        page = context.new_page()
        page.on("console", browser_problems.on_console)
        page.on("pageerror", lambda exc: browser_problems.page_errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def sign_in(password):
    """Sign `user` in on `page` as a person does: username and password, then the current code of
    their authenticator; waits until the desk (or the page asked for with `next`) has loaded."""

    def sign_in(page, user, *, next_path="/"):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from accounts.demo import totp_now

        page.goto(next_path)
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Continue").click()
        code = page.get_by_label("Code", exact=True)
        code.wait_for()
        code.fill(totp_now(TOTPDevice.objects.get(user=user, confirmed=True)))
        page.get_by_role("button", name="Verify").click()
        page.locator("header.topbar .user-name").filter(has_text=user.username).wait_for()

    return sign_in


@pytest.fixture
def password():
    return TEST_PASSWORD


@pytest.fixture
def tenant(transactional_db):
    return services.tenant_create(slug="acme-bank", name=TENANT_NAME)


@pytest.fixture
def agent(tenant):
    return make_staff("agent.e2e", role=Role.AGENT, tenants=[tenant])


@pytest.fixture
def new_agent(tenant):
    """An agent who has not set up an authenticator app yet."""
    return make_staff("new.agent.e2e", role=Role.AGENT, tenants=[tenant], enrolled=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report gets what the desk's server logged while the test ran."""
    outcome = yield
    report = outcome.get_result()
    if _server_log is None:
        return
    if call.when == "setup":
        item.stash[_log_offset] = _server_log.stat().st_size
    if report.failed and _log_offset in item.stash:
        with _server_log.open("rb") as log:
            log.seek(item.stash[_log_offset])
            report.sections.append(("desk server log", log.read()[-50_000:].decode(errors="replace")))


def pytest_terminal_summary(terminalreporter):
    """What the browser tests measured (`record_property`), printed after the run: the figures a
    pass or a failure alone would hide."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, []) if r.when == "call"]
    lines = [f"{r.nodeid.split('::')[-1]}: {name} = {value}" for r in reports for name, value in r.user_properties]
    if lines:
        terminalreporter.section("measured in the browser")
        for line in lines:
            terminalreporter.line(line)
