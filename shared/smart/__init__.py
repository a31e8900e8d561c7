"""SMART App Launch 2.2 by spec: discovery, PKCE, EHR launch, backend services, id_token validation."""
