from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponsePermanentRedirect, HttpResponseServerError
from django.template import loader
from django.templatetags.static import static

from accounts.decorators import mfa_not_required
from config.logging import current_request_id


@login_not_required
@mfa_not_required
def favicon(request):
    # Resolved per request: with the manifest storage the hashed name exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


def server_error(request):
    """The 500 page in the site's layout, with the request id to quote to support. Rendered
    without the request: no context processor (and no database) may be needed to say sorry."""
    request_id = current_request_id()
    html = loader.get_template("500.html").render({"request_id": "" if request_id == "-" else request_id})
    return HttpResponseServerError(html)
