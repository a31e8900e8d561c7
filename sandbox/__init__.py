"""Local stand-ins for everything outside our code: Functions host, Oracle Health, Entra ID, Graph, ACS."""
