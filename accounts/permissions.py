from rest_framework.permissions import BasePermission


class IsVerifiedStaff(BasePermission):
    """Default for every staff API: logged in, active, and through the OTP step."""

    message = "Two-factor authentication is required."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_verified())
