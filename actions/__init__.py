"""Custom actions of the Kesar Lane support assistant (rasa-sdk action server).

One module per concern: knowledge-base answers, orders, escalation/hand-off, resolution tracking,
marketing consent, sessions. Settings a conversation designer tunes come from escalation.yml.
"""
