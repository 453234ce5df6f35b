from django.utils import timezone
from rest_framework import serializers

from alerts.models import Alert


class CustomerBriefSerializer(serializers.Serializer):
    """The account an alert is about, masked: staff reveal details only through the desk. The
    masked forms are stored beside the encrypted contacts, so a page of alerts decrypts nothing."""

    id = serializers.IntegerField()
    external_id = serializers.CharField(help_text="The client's own id for the account.")
    email = serializers.CharField(source="email_masked", help_text="Masked, e.g. a***@e***.")
    phone = serializers.CharField(source="phone_masked", help_text="Masked, e.g. +***67.")


class EvidenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class AlertSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer = CustomerBriefSerializer(read_only=True, allow_null=True)
    severity_label = serializers.CharField(source="get_severity_display", read_only=True)
    assignee = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who holds the alert, or null."
    )
    breaching = serializers.SerializerMethodField(help_text="Whether the SLA due time has passed.")

    class Meta:
        model = Alert
        fields = [
            "id", "tenant", "type", "rule", "severity", "severity_label", "status", "reason", "count",
            "first_seen_at", "last_seen_at", "customer", "assignee", "sla_due_at", "breaching",
        ]  # fmt: skip
        read_only_fields = fields

    def get_breaching(self, alert) -> bool:
        return alert.sla_due_at is not None and alert.sla_due_at < timezone.now()


class AlertDetailSerializer(AlertSerializer):
    evidence = EvidenceSerializer(many=True, read_only=True)
    related = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "evidence", "related"]
        read_only_fields = fields


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would take 5 as "5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TransitionSerializer(serializers.Serializer):
    note = StrictCharField(required=False, allow_blank=True, max_length=500, default="")


class TransitionResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class AssignSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)


class AssigneeResultSerializer(serializers.ModelSerializer):
    assignee = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who holds the alert, or null."
    )

    class Meta:
        model = Alert
        fields = ["id", "assignee"]
        read_only_fields = fields
