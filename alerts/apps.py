from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        from alerts import lookups  # noqa: F401 (registers __any)
        from alerts.notifications import (
            answer_tasks,  # noqa: F401 (registers the no-answer task)
            receipts,  # noqa: F401 (takes anymail's email tracking events)
        )
