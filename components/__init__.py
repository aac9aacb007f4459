"""Custom Rasa graph components of this project (see config.yml)."""
