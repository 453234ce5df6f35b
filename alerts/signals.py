"""Signals that the alerts domain sends for other apps to hook into, without importing them.

Audit records stay explicit inside the services; these only let another app (the desk) add its own
part of a change in the same transaction.
"""

from django.dispatch import Signal

# The customer answered "No, it wasn't me" to an alert's notification. Sent with `alert_id`, inside
# the transaction that records the answer (the answer itself escalates the alert); the desk opens or
# updates the customer's case in it (desk.services.case_open_for_customer_answer).
alert_disowned = Signal()

# The customer answered "No" to an action notice (Purpose.ACTION_NOTICE: "a change of your contact
# details was asked for"), told before an account change the desk asked for takes effect. Sent with
# `reference` (the notice's subject as its planner knows it: the desk's AccountAction.uuid),
# `notification_id` and `via`, inside the answer's transaction; the desk puts the action on hold.
notice_disowned = Signal()
