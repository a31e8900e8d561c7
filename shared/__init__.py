"""The connector's domain and its adapters to external systems (never imports azure.functions)."""
