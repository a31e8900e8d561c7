"""Oracle Health (Cerner Millennium) stand-in: SMART v1 authorization server, FHIR R4 and a PowerChart page."""

from sandbox.oracle.app import build_app
from sandbox.oracle.seed import Seeded, seed
from sandbox.oracle.state import OracleState

__all__ = ["OracleState", "Seeded", "build_app", "seed"]
