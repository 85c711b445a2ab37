"""The real-time half: a local Kafka broker (``broker``), event producers (``producers``), the
real datasets through Kafka (``replay``), the Structured Streaming job (``job``, its window
functions in ``transforms``) and its staleness check (``health``)."""
