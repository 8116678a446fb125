"""Paging: which pages a batch owes, the outbox they wait in, how a page is composed, and
the sender that delivers them to PagerDuty, a signed webhook or a Kafka topic (with the
auto-pause release of held first pages). Reads and writes its own tables through the
store's engine; knows nothing of the API or of how events arrive."""
