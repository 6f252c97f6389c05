"""Modeling services: training runs and pool scoring (one module each)."""
