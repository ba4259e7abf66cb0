"""Frame attributes (emovid_core.attributes): the paper's HSV measures, curves, plots, the Frame Attributes node and `emovid analyze`."""
