"""The licences (subscribedSkus) each sandbox tenant has."""

from __future__ import annotations

import uuid

from sandbox.config import ENTRA_TENANT_ID, OTHER_TENANT_ID


def _sku(tid: str, part_number: str, sku_id: str, status: str, units: tuple[int, int], plan: str) -> dict:
    enabled, consumed = units
    return {
        "accountName": "Sandbox account", "accountId": tid, "appliesTo": "User", "capabilityStatus": status,
        "consumedUnits": consumed, "id": f"{tid}_{sku_id}",
        "prepaidUnits": {"enabled": enabled if status == "Enabled" else 0, "lockedOut": 0,
                         "suspended": enabled if status == "Suspended" else 0, "warning": 0},
        "servicePlans": [{"servicePlanId": str(uuid.uuid5(uuid.NAMESPACE_OID, plan)), "servicePlanName": plan,
                          "provisioningStatus": "Success" if status == "Enabled" else "Disabled",
                          "appliesTo": "User"}],
        "skuId": sku_id, "skuPartNumber": part_number,
        "subscriptionIds": [str(uuid.uuid5(uuid.NAMESPACE_OID, f"{tid}:{sku_id}"))],
    }


def default_skus() -> dict[str, list[dict]]:
    """Home tenant licensed for the connector (Microsoft Cloud for Healthcare); the other tenant is not."""
    e5, healthcare, crm = ("c7df2760-2c81-4ef7-b578-5b5392b571df", "2f3b6f1e-6d0c-4b8e-9a4e-3c5d7e9f1a2b",
                           "d17b27af-3f49-4822-99f9-56a661538792")
    return {
        ENTRA_TENANT_ID: [
            _sku(ENTRA_TENANT_ID, "ENTERPRISEPREMIUM", e5, "Enabled", (25, 14), "TEAMS1"),
            _sku(ENTRA_TENANT_ID, "Microsoft_Cloud_for_Healthcare", healthcare, "Enabled", (10, 2),
                 "MICROSOFT_CLOUD_FOR_HEALTHCARE"),
        ],
        OTHER_TENANT_ID: [
            _sku(OTHER_TENANT_ID, "ENTERPRISEPREMIUM", e5, "Enabled", (25, 14), "TEAMS1"),
            _sku(OTHER_TENANT_ID, "CRMSTANDARD", crm, "Suspended", (25, 14), "CRMSTANDARD"),
        ],
    }
