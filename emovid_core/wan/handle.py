"""The pipeline handle passed between nodes (ComfyUI type ``EMOVID_WAN_PIPE``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WAN_PIPE_TYPE = "EMOVID_WAN_PIPE"


@dataclass(eq=False)
class WanHandle:
    """A loaded diffusers Wan2.1 pipeline plus what generation and the LoRA nodes need to know about it.

    Handles are cheap: every LoRA node returns a new one that shares ``pipe`` (the base weights are never
    copied) and records its own LoRAs. ``lora_stack`` is what generation makes active on the shared transformer
    before it runs, so two graph branches of one loader with different LoRAs give the videos two separately
    loaded pipelines would; ``lora_fused`` is what this handle expects merged into the shared weights
    (``fuse``); both hold :class:`emovid_core.lora.stack.PipeLora` entries.
    """

    pipe: Any
    variant: str
    kind: str  # "t2v" or "i2v"
    source: str
    dtype: str = "float32"
    device: str = "cpu"
    offload: str = "none"
    defaults: dict = field(default_factory=dict)
    lora_stack: tuple = ()
    lora_fused: tuple = ()

    @property
    def loras(self) -> list[str]:
        """This handle's LoRAs, "name:strength" (" (fused)" for those merged into the weights)."""
        return [f"{e} (fused)" for e in self.lora_fused] + [str(e) for e in self.lora_stack]

    @property
    def transformer(self):
        return self.pipe.transformer

    def summary(self) -> str:
        s = f"Wan2.1 {self.kind.upper()} [{self.variant}] from {self.source}; {self.dtype} on {self.device}"
        if self.offload != "none":
            s += f", {self.offload} CPU offload"
        if self.loras:
            s += f"; LoRAs: {', '.join(str(x) for x in self.loras)}"
        return s

    def __repr__(self) -> str:  # the pipeline's own repr is pages long
        return f"WanHandle({self.summary()})"
