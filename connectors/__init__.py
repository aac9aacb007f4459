"""WhatsApp Cloud API channel for the Rasa assistant (see connectors/README.md)."""
