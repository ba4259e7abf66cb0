"""The pipeline handle passed between nodes (ComfyUI type ``EMOVID_WAN_PIPE``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WAN_PIPE_TYPE = "EMOVID_WAN_PIPE"


@dataclass(eq=False)
class WanHandle:
    """A loaded diffusers Wan2.1 pipeline plus what generation and the LoRA nodes need to know about it.

    ``loras`` lists the adapters currently applied to ``pipe.transformer`` (whatever
    ``emovid_core.lora.apply_lora_stack_to_diffusers`` reports); it is kept up to date by whoever
    applies a stack, so a handle always says which LoRAs its output includes.
    """

    pipe: Any
    variant: str
    kind: str  # "t2v" or "i2v"
    source: str
    loras: list = field(default_factory=list)
    dtype: str = "float32"
    device: str = "cpu"
    offload: str = "none"
    defaults: dict = field(default_factory=dict)

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
