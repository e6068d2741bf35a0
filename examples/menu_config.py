"""The repository's config, serving the menu bot with its error handler.

``bottender start --config examples/menu_config.py`` (from the repository's root).
"""

from bottender_config import *  # noqa: F403 - channels, session and initial_state as they are

app = "examples.menu:app"
error_handler = "examples.menu:on_error"
