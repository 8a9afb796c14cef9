"""Everything that talks to Jira."""
