from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Staff and tenants"

    def ready(self):
        from accounts.services import role_groups_sync

        # Role groups hold permissions, which only exist after every app has migrated.
        post_migrate.connect(lambda **kwargs: role_groups_sync(), dispatch_uid="accounts.role_groups_sync", weak=False)
