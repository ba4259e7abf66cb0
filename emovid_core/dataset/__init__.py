"""The EmoVid dataset tools: on-disk format, import, indexing, filtering, sampling, splits, statistics, export.

See docs/dataset.md#on-disk-format for the format. The public API is re-exported here; heavy modules
(video decoding, plots) are imported by the functions that need them.
"""

from .decode import DecodeOptions, decode_clip
from .export import export_diffsynth
from .filters import EmptySelectionError, Filter, apply_filter, parse_range
from .format import COLUMNS, REQUIRED_COLUMNS, SOURCE_TYPES, Clip, Reject, check_relative_path, resolve_clip_path
from .indexer import index_dataset, measure_clip
from .pick import PICK_MODES, PickedClip, choose_clip, pick_clip
from .sampling import (
    PAPER_BENCHMARK_PER_CELL,
    PAPER_TRAINING_MIX,
    assign_splits,
    balanced_order,
    benchmark_clips,
    benchmark_split,
    sample_balanced,
    sample_random,
    training_mix,
)
from .stats import compute_stats
from .synthetic import make_sample
from .table import Dataset, find_metadata, load_dataset, read_table, write_table

__all__ = [
    "COLUMNS", "REQUIRED_COLUMNS", "SOURCE_TYPES", "PAPER_BENCHMARK_PER_CELL", "PAPER_TRAINING_MIX",
    "Clip", "Reject", "Dataset", "Filter", "EmptySelectionError",
    "apply_filter", "parse_range", "check_relative_path", "resolve_clip_path",
    "assign_splits", "balanced_order", "benchmark_clips", "benchmark_split", "sample_balanced", "sample_random",
    "training_mix", "find_metadata", "load_dataset", "read_table", "write_table",
    "PICK_MODES", "PickedClip", "choose_clip", "pick_clip",
    "DecodeOptions", "decode_clip", "export_diffsynth", "index_dataset", "measure_clip", "make_sample", "compute_stats",
]
