"""Microsoft: Entra ID sign-in and app tokens (msal), Graph meetings, licences."""
