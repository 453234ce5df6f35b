"""What each staff role may do. The groups that carry these permissions are kept in step by
`role_groups_sync` after every migration; a role is held per tenant through a Membership."""

from accounts.models import Role

ROLE_PERMISSIONS: dict[str, set[str]] = {
    Role.AGENT: {
        "accounts.view_tenant",
    },
    Role.SUPERVISOR: {
        "accounts.view_tenant",
        "accounts.view_membership",
    },
    Role.ADMIN: {
        "accounts.view_tenant",
        "accounts.change_tenant",
        "accounts.view_membership",
        "accounts.add_membership",
        "accounts.change_membership",
        "accounts.delete_membership",
    },
}
