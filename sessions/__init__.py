"""Sessions: the Session object, the store contract and one module per driver."""

from sessions.base import Checkout, SessionStore, StoreError, StoreUnavailable
from sessions.session import Session

__all__ = ["Checkout", "Session", "SessionStore", "StoreError", "StoreUnavailable"]
