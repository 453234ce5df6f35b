"""Encryption at rest for personal data and secrets (customer contact details, signing secrets).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, with MultiFernet so that keys rotate:
FIELD_ENCRYPTION_KEYS is a comma-separated list, newest first; old rows stay readable.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=1)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # a wrong or missing key: fail loudly, never return ciphertext
        raise ValueError("cannot decrypt a stored value: check FIELD_ENCRYPTION_KEYS") from exc


class EncryptedTextField(models.TextField):
    """Text stored encrypted; "" and None stay as they are (nothing to hide, and queries on
    emptiness keep working). Not searchable by value, by design."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)
