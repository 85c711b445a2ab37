"""The real-time half: a local Kafka broker (``broker``), event producers (``producers``)."""
