"""Fixtures shared by every test folder: real servers and the fake platform API."""

from tests.fixtures.gateway import *  # noqa: F403
from tests.fixtures.hangs import pytest_timeout_set_timer  # noqa: F401
from tests.fixtures.platform_api import *  # noqa: F403
from tests.fixtures.redis_ha import *  # noqa: F403
from tests.fixtures.servers import *  # noqa: F403
