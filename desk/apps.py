from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "desk"
    verbose_name = "Agent desk"

    def ready(self):
        from accounts.signals import tenant_created
        from alerts.selectors import alert_scope_register
        from alerts.signals import alert_disowned, notice_disowned
        from desk.selectors import alert_queue_allows, alert_queue_scope

        # Agents see the alerts of their granted queues only, wherever alerts are read: the alerts
        # app asks every registered scope and never imports the desk.
        alert_scope_register(alert_queue_scope, allows=alert_queue_allows)

        # Every new tenant gets its default queue, in tenant_create's transaction: the identity
        # domain sends the signal and never imports the desk.
        tenant_created.connect(_tenant_created, dispatch_uid="desk.queue_create_default")

        # "No, it wasn't me": the customer's case opens (or takes the alert) in the answer's
        # transaction, and is announced once it commits.
        alert_disowned.connect(_alert_disowned, dispatch_uid="desk.case_open_for_customer_answer")

        # "No" to the notice of a contact change the desk was about to make: the action is put on hold.
        notice_disowned.connect(_notice_disowned, dispatch_uid="desk.action_hold_for_customer_answer")


def _tenant_created(sender, *, tenant, actor=None, **kwargs):
    from desk.services import queue_create_default

    queue_create_default(tenant=tenant, actor=actor)


def _alert_disowned(sender, *, alert_id, notification_id=None, **kwargs):
    from desk.action_services import actions_request_for_customer_answer
    from desk.services import case_open_for_customer_answer

    case = case_open_for_customer_answer(alert_id=alert_id)
    if case is not None:  # and the account actions the tenant enabled for a "No"
        actions_request_for_customer_answer(case=case, alert_id=alert_id, notification_id=notification_id)


def _notice_disowned(sender, *, reference, notification_id, via="link", **kwargs):
    from desk.action_services import action_hold_for_customer_answer

    action_hold_for_customer_answer(reference=reference, notification_id=notification_id, via=via)
