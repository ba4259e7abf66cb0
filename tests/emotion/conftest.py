"""Emotions, prompts and conditioning (emovid_core.emotions, prompts, conditioning) and the emotion nodes."""
