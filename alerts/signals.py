"""Signals that the alerts domain sends for other apps to hook into, without importing them.

Audit records stay explicit inside the services; these only let another app (the desk) add its own
part of a change in the same transaction.
"""

from django.dispatch import Signal

# The customer answered "No, it wasn't me" to an alert's notification. Sent with `alert_id`, inside
# the transaction that records the answer (the answer itself escalates the alert); the desk opens or
# updates the customer's case in it (desk.services.case_open_for_customer_answer).
alert_disowned = Signal()
