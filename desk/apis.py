"""The staff queue API (contracts/staff-api.md, "Queues and alerts"): the queues the caller may work
or supervise, and a queue's active alerts in queue order, in keyset pages. Errors come from the
project's exception handler (config/api.py)."""

from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from alerts.serializers import AlertSerializer
from audit.decorators import audit_shown, shows_data
from desk.selectors import (
    InvalidPositionError,
    QueuePosition,
    queue_alerts,
    queue_alerts_page,
    queue_counts,
    queue_get_for,
    queue_list_for,
    queue_siblings,
)
from desk.serializers import QueueAlertPageSerializer, QueueSerializer
from desk.services import alert_claim_next

_NOT_FOUND = OpenApiResponse(description="No such queue, or one the caller may not see (the same answer).")


@method_decorator(shows_data, name="dispatch")
class QueueListApi(APIView):
    """The queues the caller may work (granted) or supervise, with their counts."""

    http_method_names = ["get"]

    @extend_schema(operation_id="queues_list", responses={200: QueueSerializer(many=True)}, tags=["queues"])
    def get(self, request):
        queues = list(queue_list_for(user=request.user))
        counts = queue_counts(queues=queues, siblings=queue_siblings(queues))
        for queue in queues:
            queue.counts = counts[queue.pk]
        audit_shown(request).objects(queues, target_type="desk.queue")
        return Response(QueueSerializer(queues, many=True).data)


@method_decorator(shows_data, name="dispatch")
class QueueAlertListApi(APIView):
    """A queue's active alerts (open, acknowledged) in queue order: most severe first, then the
    soonest SLA due time, then the oldest, then by id. Keyset pages: the cost of a page does not
    depend on how deep it is."""

    http_method_names = ["get"]
    page_size = 50
    max_page_size = 200

    @extend_schema(
        operation_id="queues_alerts",
        parameters=[
            OpenApiParameter("cursor", str, description="from `next` of the previous page"),
            OpenApiParameter(
                "page_size", {"type": "integer", "minimum": 1, "maximum": 200}, description="50 unless given"
            ),
        ],
        responses={200: QueueAlertPageSerializer, 404: _NOT_FOUND},
        tags=["queues"],
    )
    def get(self, request, queue_id):
        queue = queue_get_for(user=request.user, queue_id=queue_id)
        cursor = request.query_params.get("cursor")
        try:
            after = QueuePosition.decode(cursor) if cursor is not None else None
        except InvalidPositionError:
            raise NotFound("Invalid cursor") from None
        page, position = queue_alerts_page(
            queue=queue, siblings=queue_siblings([queue]), after=after, size=self._page_size(request)
        )
        next_url = None
        if position is not None:
            next_url = replace_query_param(request.build_absolute_uri(), "cursor", position.encode())
        audit_shown(request).objects(page, target_type="alerts.alert")
        return Response({"results": AlertSerializer(page, many=True).data, "next": next_url})

    def _page_size(self, request) -> int:
        # As DRF's pagination: a page size it cannot take falls back to the default.
        value = request.query_params.get("page_size", "")
        if value.isascii() and value.isdigit() and 0 < int(value):
            return min(int(value), self.max_page_size)
        return self.page_size


@method_decorator(shows_data, name="dispatch")
class QueueNextApi(APIView):
    """Hand the caller the best alert of the queue that nobody holds, claimed for them (the claim is
    recorded by the service, the alert shown by this answer). 204 when none is left."""

    http_method_names = ["post"]

    @extend_schema(
        operation_id="queues_next",
        summary="Next: claim the best unclaimed alert of the queue",
        request=None,
        responses={
            200: AlertSerializer,
            204: OpenApiResponse(description="Nothing left to claim in this queue."),
            403: OpenApiResponse(description="The caller sees the queue, but their role may not work alerts."),
            404: _NOT_FOUND,
        },
        tags=["queues"],
    )
    def post(self, request, queue_id):
        queue = queue_get_for(user=request.user, queue_id=queue_id)
        siblings = queue_siblings([queue])
        claimed = alert_claim_next(queue=queue, siblings=siblings, actor=request.user)
        if claimed is None:
            # Nothing shown but the fact that the queue had nothing left: recorded as such.
            audit_shown(request).page("desk.queue_next", tenant=queue.tenant, queue=queue.pk)
            return Response(status=204)
        alert = queue_alerts(queue=queue, siblings=siblings).filter(pk=claimed.pk).first() or claimed
        audit_shown(request).object(alert)
        return Response(AlertSerializer(alert).data)
