"""Kesar Lane shared inbox: hand-offs in, assignment, notes, SLA, agent replies out, resume."""
