"""Signals that the identity domain sends for other apps to hook into, without importing them.

Audit records stay explicit inside the services; these only let another app (the desk) add its own
part of a change in the same transaction: the desk gives every new tenant its `default` queue.
"""

from django.dispatch import Signal

# Sent by accounts.services.tenant_create inside its transaction, with `tenant` and `actor`.
tenant_created = Signal()
