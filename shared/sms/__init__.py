"""SMS through Azure Communication Services: sending with stable repeatability ids, texts per language."""
