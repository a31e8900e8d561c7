"""Thin triggers, one blueprint per user-facing area; each calls one shared/ service."""
