"""The delivery pipeline, from the 202 on: the delivery record, the delivery log, the queue and
its worker, the triage and board-placement glue, and the scheduled reranks. Usable without
Flask: the web app hands it deliveries, the commands drive it."""
