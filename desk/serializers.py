from rest_framework import serializers

from alerts.serializers import AlertSerializer


class QueueCountsSerializer(serializers.Serializer):
    active = serializers.IntegerField(help_text="open and acknowledged alerts in the queue")
    unassigned = serializers.IntegerField(help_text="active alerts nobody holds")
    breaching = serializers.IntegerField(help_text="active alerts past their SLA due time")


class QueueSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tenant = serializers.CharField(source="tenant.slug", help_text="the tenant's slug")
    slug = serializers.SlugField()
    name = serializers.CharField()
    counts = QueueCountsSerializer()


class QueueAlertPageSerializer(serializers.Serializer):
    results = AlertSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="the next page, or null on the last one")
