"""Helpers about the HTTP peer, shared by login throttling and (later) the audit trail."""

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address: the socket peer, or the address that the trusted proxies saw.

    `X-Forwarded-For` is only believed for the number of proxies the operator declared
    (TRUSTED_PROXY_COUNT); anything further left in the header is client-controlled.
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")
