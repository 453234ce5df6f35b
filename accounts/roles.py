"""What each staff role may do. The groups that carry these permissions are kept in step by
`role_groups_sync` after every migration; a role is held per tenant through a Membership."""

from accounts.models import Role

ROLE_PERMISSIONS: dict[str, set[str]] = {
    Role.AGENT: {
        "accounts.view_tenant",
        "alerts.view_alert",
        "alerts.change_alert",
        "desk.change_case",  # work the cases they see (their queues', and those shared with them)
    },
    Role.SUPERVISOR: {
        "accounts.view_tenant",
        "accounts.view_membership",
        "audit.view_auditevent",
        "alerts.view_alert",
        "alerts.change_alert",
        "desk.view_queue",  # every queue of the tenant; agents see only the queues granted to them
        "alerts.reassign_alert",  # release or reassign an alert another staff member holds
        "alerts.view_deliverydrill",  # the delivery record, to show a client that alerts arrive
        "desk.change_case",
        "desk.supervise_case",  # share a case, reveal without verification, review security concerns
    },
    Role.ADMIN: {
        "accounts.view_tenant",
        "accounts.change_tenant",
        "accounts.view_membership",
        "accounts.add_membership",
        "accounts.change_membership",
        "accounts.delete_membership",
        "audit.view_auditevent",
        "alerts.view_alert",
        "alerts.change_alert",
        "desk.view_queue",
        "alerts.reassign_alert",
        "alerts.view_deliverydrill",
        "alerts.add_deliverydrill",  # fire a test notification to the tenant's test customer
        # The wording of customer messages and the client's official contact details in them.
        "alerts.change_notificationtemplate",
        "alerts.change_messagesettings",
        "desk.change_case",
        "desk.supervise_case",
        "desk.change_playbookoverride",  # the tenant's own playbooks
    },
}

# Not a tenant role: the group of BPO-wide admins, who run Django admin for every tenant.
BPO_ADMIN_GROUP = "bpo_admin"
BPO_ADMIN_PERMISSIONS: set[str] = {
    *(f"accounts.{action}_{model}" for action in ("view", "add", "change") for model in ("user", "tenant")),
    *(f"accounts.{action}_membership" for action in ("view", "add", "change", "delete")),
    "auth.view_group",
    "audit.view_auditevent",
    "audit.view_auditcheckpoint",
    "alerts.view_alert",
    "desk.view_queue",
    "alerts.view_deliverydrill",
    "alerts.add_deliverydrill",
    # Customer messages of every tenant: their wording and the official contact details in them.
    "alerts.change_notificationtemplate",
    "alerts.change_messagesettings",
    # Security concerns of every tenant (reviewing them is its supervisors'), and its playbooks.
    "desk.view_securityconcern",
    "desk.change_playbookoverride",
    # Detection's dead letters: see them, and run detection over them again (the admin action).
    "alerts.view_eventdeadletter",
    "alerts.change_eventdeadletter",
    # Staff MFA devices: see them, and remove a lost one so that its owner enrols again.
    "otp_totp.view_totpdevice",
    "otp_totp.delete_totpdevice",
    "otp_static.view_staticdevice",
    "otp_static.delete_staticdevice",
    # Sign-in lockouts: see them and lift one.
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
    "axes.view_accessfailurelog",
}
