"""Test settings: the real settings, with a fast password hasher and no static manifest."""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
CELERY_TASK_ALWAYS_EAGER = True
DETECTION_COALESCE = False  # eager tasks run at once; alerts/tests/test_claiming.py turns it on to test it
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
