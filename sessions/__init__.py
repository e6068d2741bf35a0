"""Sessions: the Session object, the store contract and one module per driver."""

from bottender.sessions.base import Checkout, SessionStore, StoreError, StoreUnavailable
from bottender.sessions.session import Session

__all__ = ["Checkout", "Session", "SessionStore", "StoreError", "StoreUnavailable"]
