"""Emotion colour grading and drift correction (emovid_core.grading), the per-pixel layer under it and the
attributes (emovid_core.pixels: numba, OpenCV and torch paths agree), the Emotion Grade / Drift Correct nodes and
`emovid grade` / `emovid drift`."""
