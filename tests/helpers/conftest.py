"""Helpers more than one folder uses: finding a real ComfyUI and its Python (comfyui_env), real failed writes (write_errors), a node that outputs one fixed value (source_node)."""
