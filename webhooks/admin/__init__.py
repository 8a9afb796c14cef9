"""The admin pages under ``/admin/``: deliveries, dead ones to replay, boards, the check.

Register with ``app.register_blueprint(bp)``; they are behind ``ADMIN_TOKEN`` (see ``auth``).
"""

from webhooks.admin.views import bp

__all__ = ["bp"]
