"""What the product needs of a Jira site, judged against the admins' config: the ``check``
command and the admin pages' Check page both run ``jira_setup.check.run_checks``."""
