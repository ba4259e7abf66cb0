"""The host layer (emovid_core.host): graph runner, workflows, core nodes, queue client, demo, CLI output safety, a real ComfyUI."""
