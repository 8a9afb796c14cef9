"""What the product needs of a Jira site, judged against the admins' config: the ``check``
command and the admin pages' Check page both run ``jira_setup.check.run_checks``; ``setup``
plans (``jira_setup.setup_plan``) and makes (``jira_setup.setup``) what is missing; ``config
init`` starts a config from a field's options (``jira_setup.starter``)."""
