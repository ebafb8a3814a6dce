"""The bearer tokens the API accepts: JWTs with tenant, user and role claims."""

TENANT_CLAIM = "tenantId"
USER_CLAIM = "sub"
ROLES_CLAIM = "roles"
TENANT_ADMIN = "TenantAdmin"
