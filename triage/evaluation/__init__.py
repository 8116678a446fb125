"""Offline quality measurements of triage against labeled data."""
