"""Wan2.1 generation (emovid_core.wan) on the tiny random pipeline built in code."""
