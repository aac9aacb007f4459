"""Local stand-in for Meta's WhatsApp Cloud API, for development and tests (not for production).

Run: `python -m whatsapp_sandbox` (see whatsapp_sandbox/README.md).
"""
