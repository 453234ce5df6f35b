from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "desk"
    verbose_name = "Agent desk"

    def ready(self):
        from accounts.signals import tenant_created

        # Every new tenant gets its default queue, in tenant_create's transaction: the identity
        # domain sends the signal and never imports the desk.
        tenant_created.connect(_tenant_created, dispatch_uid="desk.queue_create_default")


def _tenant_created(sender, *, tenant, actor=None, **kwargs):
    from desk.services import queue_create_default

    queue_create_default(tenant=tenant, actor=actor)
