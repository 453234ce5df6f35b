from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import AlertType
from alerts.serializers import AlertSerializer, CustomerBriefSerializer, StrictCharField
from desk.models import Case, CaseOutcome, CaseStatus, ConcernKind, RevealField, RevealReason
from desk.selectors import case_is_verified, case_verification


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


# --- cases ------------------------------------------------------------------------------------------


class CaseVerificationSerializer(serializers.Serializer):
    method = serializers.CharField(allow_null=True, help_text="how the caller was verified")
    at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()


class CaseSerializer(serializers.ModelSerializer):
    """A case as the staff API shows it: ids, states and the customer's masked contacts."""

    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer = CustomerBriefSerializer(read_only=True)
    queue = serializers.IntegerField(source="queue_id", read_only=True)
    assignee = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who holds the case, or null."
    )
    alerts = serializers.SerializerMethodField(help_text="The ids of the case's alerts.")
    verified = serializers.SerializerMethodField(help_text="Whether the caller is verified as the customer now.")
    verification = serializers.SerializerMethodField(help_text="How the caller was verified, or null while not.")
    breaching = serializers.SerializerMethodField(help_text="Whether the SLA due time has passed.")

    class Meta:
        model = Case
        fields = [
            "id", "tenant", "customer", "queue", "status", "outcome", "severity", "opened_via", "opened_at",
            "updated_at", "assignee", "sla_due_at", "breaching", "alerts", "verified", "verification",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_alerts(self, case) -> list[int]:
        return sorted(link.alert_id for link in case.case_alerts.all())

    def get_verified(self, case) -> bool:
        return case_is_verified(case)

    @extend_schema_field(CaseVerificationSerializer(allow_null=True))
    def get_verification(self, case):
        verification = case_verification(case)
        return None if verification is None else CaseVerificationSerializer(verification).data

    def get_breaching(self, case) -> bool:
        return case.sla_due_at is not None and case.sla_due_at < timezone.now()


class CaseListFilterSerializer(serializers.Serializer):
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=CaseStatus.choices, required=False)


class NoteInputSerializer(serializers.Serializer):
    body = StrictCharField(max_length=2000)


class NoteResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.IntegerField(source="case_id")
    created_at = serializers.DateTimeField()


class StatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    outcome = serializers.ChoiceField(choices=CaseOutcome.choices, required=False, help_text="to resolve")
    note = StrictCharField(required=False, allow_blank=True, max_length=500, default="")

    def validate(self, data):
        if data["status"] == CaseStatus.RESOLVED and not data.get("outcome"):
            raise serializers.ValidationError({"outcome": "Say how the case ends to resolve it."})
        return data


class StatusResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    outcome = serializers.CharField()


class CaseAssigneeResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assignee = serializers.CharField(source="assignee.username", allow_null=True, help_text="Who holds the case.")


class RevealInputSerializer(serializers.Serializer):
    field = serializers.ChoiceField(choices=RevealField.choices)
    reason = StrictCharField(max_length=500, help_text="why, in words (required)")
    reason_code = serializers.ChoiceField(
        choices=RevealReason.choices, required=False, default=RevealReason.OTHER, help_text="why, from the list"
    )


class RevealResultSerializer(serializers.Serializer):
    field = serializers.CharField()
    value = serializers.CharField(help_text="the clear value: shown to the caller alone, never stored")
    expires_at = serializers.DateTimeField(help_text="shown until then")


class ConcernInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ConcernKind.choices)
    note = StrictCharField(required=False, allow_blank=True, max_length=1000, default="")


class ConcernResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.IntegerField(source="case_id")
    kind = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class ShareInputSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)


class ShareResultSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    username = serializers.CharField()
    shared = serializers.BooleanField()


class CheckInputSerializer(serializers.Serializer):
    alert_type = serializers.ChoiceField(choices=AlertType.choices)
    step = StrictCharField(max_length=40)


class CheckResultSerializer(serializers.Serializer):
    case = serializers.IntegerField(source="case_id")
    alert_type = serializers.CharField()
    step = serializers.CharField(source="step_key")
    checked_by = serializers.CharField(source="checked_by.username")
    checked_at = serializers.DateTimeField()


# --- verification and account actions ------------------------------------------------------------

# Fields that would carry an address given during the call: refused outright, so that no client can
# believe a code or an action went to one (codes go only to a channel on file).
ADDRESS_FIELDS = frozenset({"to", "address", "email", "phone", "number", "recipient", "destination"})


class _NoAddressMixin:
    def validate(self, attrs):
        given = ADDRESS_FIELDS & set(self.initial_data or {})
        if given:
            raise serializers.ValidationError(
                {name: "Codes and actions go only to the contacts on file: no address may be given." for name in given}
            )
        return attrs


class VerificationInputSerializer(_NoAddressMixin, serializers.Serializer):
    method = serializers.ChoiceField(
        choices=["otp", "push_match", "callback"], help_text="otp, push_match (a code) or callback (recorded)"
    )
    channel = serializers.ChoiceField(
        choices=["sms", "email", "voice", "push"], required=False, help_text="the channel on file (codes only)"
    )
    note = StrictCharField(max_length=500, required=False, allow_blank=True, default="", help_text="callback only")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["method"] != "callback" and "channel" not in attrs:
            raise serializers.ValidationError({"channel": "Say which channel on file the code goes to."})
        return attrs


class VerificationResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.CharField()
    channel = serializers.CharField()
    state = serializers.CharField()
    to = serializers.CharField(source="recipient_masked", help_text="the masked address on file")
    expires_at = serializers.DateTimeField()


class VerificationCheckInputSerializer(_NoAddressMixin, serializers.Serializer):
    code = StrictCharField(max_length=12, help_text="the digits the customer reads out")


class VerificationCheckResultSerializer(serializers.Serializer):
    verified = serializers.BooleanField()
    valid_until = serializers.DateTimeField(allow_null=True, required=False)


class KnowledgeInputSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=StrictCharField(max_length=200, allow_blank=True),
        help_text="question key -> what the caller answers (every active question of the tenant)",
    )


class KnowledgeResultSerializer(serializers.Serializer):
    verified = serializers.BooleanField()
    strength = serializers.CharField(help_text="weak: never enough alone for a high-risk action")
    valid_until = serializers.DateTimeField(allow_null=True, required=False)


class ActionInputSerializer(_NoAddressMixin, serializers.Serializer):
    action = StrictCharField(max_length=30, help_text="lock, reset_password, revoke_sessions, revoke_app, ...")
    params = serializers.DictField(required=False, default=dict, help_text="revoke_app: app; change_contact: field")


class ActionResultSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid", help_text="the action id the client dedupes on")
    action = serializers.CharField()
    state = serializers.CharField()
    needs = serializers.CharField(help_text="why it waits for a supervisor, if it does")


class ActionApproveInputSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, help_text="why the supervisor approves (required)")
