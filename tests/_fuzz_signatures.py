"""What the binding fuzzer calls: the signature of every function, constructor and method of
``qama_rs._core`` (each argument's kind: an array of a dtype and rank, an optional one, a list of
arrays, an int, a str among names, a ``Store``, ``Plan`` or ``Filter``), the static constructors, and
the words that name an argument in messages about its parts."""

from __future__ import annotations

import numpy as np

from qama_rs import _core

ISAS = _core.available_isas()
ISA_NAMES = ("scalar", "avx2", "avx512")
LAYOUTS = ("rows", "blocks")

# Argument kinds: ("array", dtype, ndim), ("opt_array", dtype, ndim), ("arrays", dtype, ndim) (a list
# of arrays), ("opt_arrays", dtype, ndim), ("int",), ("opt_int",), ("opt_float",), ("opt_str", names),
# ("bool",), ("store",), ("plan",), ("opt_filter",).
U8, U16, U64, I64, F32 = np.uint8, np.uint16, np.uint64, np.int64, np.float32
BOOL = np.bool_
CODEC_CALLS = {
    "search": [("store", ("store",)), ("k", ("int",)), ("filter", ("opt_filter",))],
    "search_lists": [
        ("store", ("store",)),
        ("k", ("int",)),
        ("plan", ("plan",)),
        ("filter", ("opt_filter",)),
    ],
    "score": [("store", ("store",)), ("candidates", ("array", I64, 2))],
    "rescore": [
        ("store", ("store",)),
        ("candidates", ("array", I64, 2)),
        ("k", ("int",)),
        ("filter", ("opt_filter",)),
    ],
}
QUERY_KINDS = {
    "HammingCodec": ("array", U64, 2),
    "TableCodec": ("array", F32, 3),
    "FloatCodec": ("array", F32, 2),
    "Float16Codec": ("array", F32, 2),
    "Affine8Codec": ("array", F32, 2),
}
# Static constructors (called on the class); other dotted names are methods of a drawn object.
STATICS = {"TableCodec.recon", "TableCodec.given", "TableCodec.projected", "Filter.bits", "Filter.labels"}
SIGNATURES: dict[str, list[tuple[str, tuple]]] = {
    "quantize": [("x", ("array", F32, 2)), ("thresholds", ("array", F32, 1)), ("levels", ("array", U16, 1))],
    "expand": [("codes", ("array", U8, 2)), ("levels", ("array", U16, 1))],
    "collapse": [("packed", ("array", U64, 2)), ("levels", ("array", U16, 1))],
    "encode": [("x", ("array", F32, 2)), ("thresholds", ("array", F32, 1)), ("levels", ("array", U16, 1))],
    "Thresholds": [("thresholds", ("array", F32, 1)), ("levels", ("array", U16, 1))],
    "Thresholds.quantize": [("x", ("array", F32, 2))],  # on a drawn Thresholds
    "Thresholds.encode": [("x", ("array", F32, 2))],
    "pack_bits": [("bits", ("array", U8, 2))],
    "unpack_bits": [("words", ("array", U64, 2)), ("nbits", ("int",))],
    "hamming_distances": [
        ("queries", ("array", U64, 2)),
        ("database", ("array", U64, 2)),
        ("nbits", ("opt_int",)),
        ("isa", ("opt_str", ISA_NAMES)),
    ],
    "pack_codes": [("codes", ("array", U8, 2)), ("bits", ("int",))],
    "unpack_codes": [("packed", ("array", U8, 2)), ("dims", ("int",)), ("bits", ("int",))],
    "to_blocks": [("codes", ("array", U8, 2))],
    "from_blocks": [("blocks", ("array", U8, 1)), ("n", ("int",)), ("row_bytes", ("int",))],
    "write_block_rows": [("blocks", ("array", U8, 1)), ("at", ("int",)), ("rows", ("array", U8, 2))],
    "keep_block_rows": [("blocks", ("array", U8, 1)), ("row_bytes", ("int",)), ("keep", ("array", BOOL, 1))],
    "kmeans_iterate": [
        ("x", ("array", F32, 2)),
        ("centroids", ("array", F32, 2)),
        ("basis", ("opt_array", F32, 2)),
        ("candidates", ("opt_int",)),
    ],
    "kmeans_assign": [
        ("x", ("array", F32, 2)),
        ("centroids", ("array", F32, 2)),
        ("basis", ("opt_array", F32, 2)),
        ("candidates", ("opt_int",)),
    ],
    "peak_abs": [("x", ("array", F32, 2))],
    "available_isas": [],
    "best_isa": [],
    "cpu_features": [],
    "num_threads": [],
    "_gil_checks": [],
    # Constructors.
    "Store": [
        ("segments", ("arrays", U8, 1)),
        ("table", ("array", U64, 2)),
        ("labels", ("opt_arrays", U64, 1)),
        ("row_scale", ("opt_arrays", F32, 1)),
        ("max_scale", ("opt_float",)),
    ],
    "Filter.bits": [("words", ("array", U64, 1))],
    "Filter.labels": [("labels", ("array", U64, 1))],
    "Filter.admitting": [("store", ("store",))],  # on a drawn filter
    "Plan": [("lists", ("array", I64, 2)), ("nprobe", ("int",)), ("bias", ("opt_array", F32, 2))],
    "Plan.arrays": [],  # on a drawn plan
    "Coarse": [("centroids", ("array", F32, 2)), ("isa", ("opt_str", ISA_NAMES)), ("radius", ("opt_float",))],
    "Coarse.centroids": [],  # on a drawn coarse quantizer
    "Coarse.plan": [
        ("queries", ("array", F32, 2)),
        ("nprobe", ("int",)),
        ("width", ("int",)),
        ("residual", ("bool",)),
    ],
    "HammingCodec": [("words", ("int",)), ("nbits", ("opt_int",)), ("isa", ("opt_str", ISA_NAMES))],
    "TableCodec.recon": [
        ("recon", ("array", F32, 2)),
        ("layout", ("opt_str", LAYOUTS)),
        ("isa", ("opt_str", ISA_NAMES)),
    ],
    "TableCodec.given": [("m", ("int",)), ("layout", ("opt_str", LAYOUTS)), ("isa", ("opt_str", ISA_NAMES))],
    "TableCodec.projected": [
        ("basis", ("array", F32, 2)),
        ("slot_dims", ("array", I64, 2)),
        ("slot_values", ("array", F32, 3)),
        ("layout", ("opt_str", LAYOUTS)),
        ("isa", ("opt_str", ISA_NAMES)),
    ],
    "FloatCodec": [("dims", ("int",)), ("isa", ("opt_str", ISA_NAMES))],
    "Float16Codec": [("dims", ("int",)), ("isa", ("opt_str", ISA_NAMES))],
    "Affine8Codec": [("base", ("array", F32, 1)), ("step", ("array", F32, 1)), ("isa", ("opt_str", ISA_NAMES))],
    # Methods, on a codec of the class drawn with the arguments.
    **{
        f"{cls}.{method}": [("queries", QUERY_KINDS[cls]), *params]
        for cls in QUERY_KINDS
        for method, params in CODEC_CALLS.items()
    },
}
# Words that name an argument in messages about its parts: a store's errors at search time name the
# segment, list, labels or row_scale of it that does not fit; a plan's name the list or the bias.
ALIASES = {"store": ("segment", "list", "labels", "row_scale"), "plan": ("list", "bias")}
