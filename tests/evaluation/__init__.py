"""Tests of emovid_core.evaluation, its CLI and nodes."""
