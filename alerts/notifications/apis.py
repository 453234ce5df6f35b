"""The staff API of notifications: an alert's notifications (ids and states, no address, no content)."""

from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.notifications.models import Channel, Purpose, State
from alerts.notifications.selectors import notification_list_for_alert
from alerts.selectors import alert_get_for
from audit.decorators import audit_shown, shows_data

# The published states (contracts/staff-api.md); a bounce is a failure to deliver, told as one.
CONTRACT_STATES = [State.QUEUED, State.SENT, State.DELIVERED, State.FAILED, State.SKIPPED]


class ContractStateField(serializers.ChoiceField):
    def to_representation(self, value):
        return State.FAILED.value if value == State.BOUNCED else super().to_representation(value)


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    state = ContractStateField(choices=[(s.value, s.label) for s in CONTRACT_STATES])
    purpose = serializers.ChoiceField(choices=Purpose.choices)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


@method_decorator(shows_data, name="dispatch")
class AlertNotificationListApi(APIView):
    """The notifications of one alert the caller may see, oldest first: which channel, its state and
    purpose, when planned and sent. Another tenant's alert, one outside the caller's queues and a
    missing one answer 404 alike (alerts.selectors.alert_get_for)."""

    http_method_names = ["get"]

    @extend_schema(
        operation_id="alerts_notifications",
        summary="An alert's customer notifications",
        tags=["alerts"],
        responses={
            200: NotificationSerializer(many=True),
            404: OpenApiResponse(description="No such alert, or one the caller may not see."),
        },
    )
    def get(self, request, alert_id):
        alert = alert_get_for(user=request.user, alert_id=alert_id, with_evidence=False)
        notifications = list(notification_list_for_alert(alert=alert))
        audit_shown(request).object(alert)
        return Response(NotificationSerializer(notifications, many=True).data)
