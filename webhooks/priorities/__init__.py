"""The priorities pages under ``/priorities``: every colleague's view of which work serves paying
customers and which is an internal preference (see ``views``).

Register with ``app.register_blueprint(bp)``.
"""

from webhooks.priorities.views import bp

__all__ = ["bp"]
