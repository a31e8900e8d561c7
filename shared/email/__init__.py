"""Email through Azure Communication Services Email: sending with repeatability, texts per language, addresses."""
