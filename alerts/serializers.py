from rest_framework import serializers

from alerts.models import Alert
from audit.masking import mask


class CustomerBriefSerializer(serializers.Serializer):
    """The account an alert is about, masked: staff reveal details only through the desk."""

    id = serializers.IntegerField()
    email = serializers.SerializerMethodField()
    phone = serializers.SerializerMethodField()

    def get_email(self, customer) -> str:
        return mask(customer.email) if customer.email else ""

    def get_phone(self, customer) -> str:
        return mask(customer.phone) if customer.phone else ""


class EvidenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class AlertSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer = CustomerBriefSerializer(read_only=True, allow_null=True)
    severity_label = serializers.CharField(source="get_severity_display", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "tenant", "type", "rule", "severity", "severity_label", "status", "reason", "count",
            "first_seen_at", "last_seen_at", "customer",
        ]  # fmt: skip
        read_only_fields = fields


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
