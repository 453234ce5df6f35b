"""Reads of tenants' message templates and settings for the editor, and their access functions:
tenant admins of the tenant and BPO admins only (a role carrying alerts.change_notificationtemplate);
everyone else gets 404, as for a tenant that does not exist."""

from dataclasses import dataclass

from django.http import Http404

from accounts.models import Tenant, User
from accounts.selectors import tenant_ids_with_perm, user_has_tenant_perm
from alerts.models import MessageChannel, MessageKind, NotificationTemplate
from alerts.notifications.content import Wording, brand_for, template_passes, wording_choose, wording_for
from alerts.notifications.defaults import BUILTIN_LOCALES
from alerts.notifications.locales import locale_chain
from alerts.notifications.template_services import TEMPLATE_CHANGE_PERM


def message_tenant_ids_for(*, user: User) -> list[int]:
    """Ids of the tenants whose customer messages `user` may edit."""
    return tenant_ids_with_perm(user=user, perm=TEMPLATE_CHANGE_PERM)


def message_tenant_get_for(*, user: User, tenant_id) -> Tenant:
    """A tenant whose customer messages `user` may edit. Missing and forbidden both raise Http404."""
    try:
        tenant = Tenant.objects.select_related("message_settings").get(pk=int(tenant_id), is_active=True)
    except (Tenant.DoesNotExist, ValueError, TypeError):
        raise Http404("No such tenant.") from None
    if not user_has_tenant_perm(user=user, tenant=tenant, perm=TEMPLATE_CHANGE_PERM):
        raise Http404("No such tenant.")
    return tenant


@dataclass(frozen=True)
class TemplateCell:
    kind: str
    channel: str
    template: NotificationTemplate | None  # the tenant's own wording in this exact locale
    wording: Wording  # what is sent to a customer of this locale
    failing: bool  # the tenant's wording fails the check now (the default is sent instead)

    @property
    def channel_label(self) -> str:
        return MessageChannel(self.channel).label


@dataclass(frozen=True)
class TemplateRow:
    kind: str
    label: str
    cells: list[TemplateCell]


def message_locales_for(*, tenant: Tenant) -> list[str]:
    """The locales worth offering: the built-in ones, the tenant's default and those it wrote in."""
    own = NotificationTemplate.objects.filter(tenant=tenant).values_list("locale", flat=True).distinct()
    locales = [*BUILTIN_LOCALES, brand_for(tenant).default_locale, *sorted(own)]
    return list(dict.fromkeys(locales))


def message_template_table(*, tenant: Tenant, locale: str) -> list[TemplateRow]:
    """Every kind × channel for one locale: the tenant's own wording in that locale, and what a
    customer of that locale is sent (which may come from a wider locale or a default). Two queries."""
    brand = brand_for(tenant)
    chain = locale_chain(locale, tenant_default=brand.default_locale)
    own: dict[tuple[str, str], dict[str, NotificationTemplate]] = {}
    for t in NotificationTemplate.objects.filter(tenant=tenant, locale__in=chain).select_related("updated_by"):
        own.setdefault((t.alert_type, t.channel), {})[t.locale] = t
    rows = []
    for kind, label in MessageKind.choices:
        cells = []
        for channel in MessageChannel.values:
            mine = own.get((kind, channel), {})
            template = mine.get(locale)
            failing = template is not None and not template_passes(
                kind, channel, locale, template.subject, template.body, brand.official_domain
            )
            wording = wording_choose(own=mine, kind=kind, channel=channel, chain=chain, brand=brand)
            cells.append(TemplateCell(kind, channel, template, wording, failing))
        rows.append(TemplateRow(kind, label, cells))
    return rows


def message_template_for_edit(*, tenant: Tenant, kind: str, channel: str, locale: str) -> tuple:
    """(the tenant's own template in this exact locale or None, the wording a customer of this
    locale gets now)."""
    template = (
        NotificationTemplate.objects.filter(tenant=tenant, alert_type=kind, channel=channel, locale=locale)
        .select_related("updated_by")
        .first()
    )
    return template, wording_for(tenant=tenant, kind=kind, channel=channel, locale=locale)
