"""Application services: what runs the engine against the store. The pipeline (one batch
of events through correlation into the store, and the pages it owes), responders'
corrections (merge, split), suggestions, the alert-families job, and the process's
metrics. The API and the process wiring call these; these call the layers below."""
