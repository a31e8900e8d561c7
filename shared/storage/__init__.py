"""Table storage: the entity schema, the accounts (app's own + one per region) and the repositories."""
