"""The host layer: the machinery that emulates and drives ComfyUI around the pack's nodes.

- :mod:`.graph` — the headless runner: validates and executes an API-format workflow of the pack's nodes.
- :mod:`.schema` — reads node classes into plain schemas; :func:`.schema.load_pack_nodes` is the only code in
  ``emovid_core`` that knows the pack's ``nodes/`` folder exists.
- :mod:`.workflow_convert` — UI ("save") → API ("prompt") workflow converter and workflow checks; the core
  nodes' ``/object_info`` snapshot it needs ships in ``host/data/``.
- :mod:`.queue_client` — queues workflows on a running ComfyUI server over HTTP/websocket.
- :mod:`.cli` and :mod:`.commands` — the ``emovid`` command, one module per subcommand.
- :mod:`.demo` — the end-to-end demo behind ``emovid demo``.

The rule (tests/test_architecture.py checks it): the domain packages — ``attributes``, ``conditioning``,
``emotions``, ``prompts``, ``video_io``, ``dataset``, ``lora``, ``wan``, ``runtime``, ``atomic``
— never import ``emovid_core.host``; the host imports the domain. Nothing here or in the domain imports ComfyUI,
and no shipped code reads the ``tests/`` folder.
"""
