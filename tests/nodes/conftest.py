"""The pack's nodes (nodes/): contracts, thinness, the video/Wan nodes and the server path policy."""
