def desk(request):
    """The user's tenant, role and tenant list for the base layout (lazy: no query unless used)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated or not request.user.is_verified():
        return {}
    return {
        "current_tenant": request.tenant,
        "current_role": request.tenant_role,
        "staff_tenants": request.tenants,
    }
