"""Video files (emovid_core.video_io): encode and decode real files."""
