"""What every process of the service shares: its settings (from the environment), its logging
(redacted JSON lines), its error hierarchy and its metrics. Imports only ``impact`` and
``connector``, so the web app, the pipeline and the commands all build on it."""
