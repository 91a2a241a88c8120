"""Ready-made routines, configured with ``set_config`` only.

==================  ========  ==================================================
class               slot      events (params)
==================  ========  ==================================================
TextClipper         input     output (clipped_text, was_clipped, original_length)
TextRenderer        input     output (rendered_text, original_type)
ResultExtractor     input     output (extracted_result, format, metadata,
                              confidence, extraction_path)
TimeProvider        request   output (time_string, timestamp, datetime,
                              formatted)
DataFlattener       input     output (flattened_data, original_type, depth)
DataTransformer     input     output (transformed_data, transformation_applied,
                              errors)
DataValidator       input     valid (validated_data); invalid (errors, data)
ConditionalRouter   input     output (data, route) for the unmatched; one event
                              per route (data, route)
==================  ========  ==================================================

Every one saves and loads with its flow (``Flow.serialize``/``deserialize``): the
configuration is plain JSON. Functions a user adds are kept by name in
process-wide registries (:func:`register_extractor`,
:func:`register_transformation`, :func:`register_validator`,
:func:`register_model`); a function put in a configuration directly works but
cannot be saved (``SerializationError`` naming the routine and the key).
"""

from __future__ import annotations

from ._models import register_model
from .conditional_router import ConditionalRouter
from .data_flattener import DataFlattener
from .data_transformer import DataTransformer, register_transformation
from .data_validator import DataValidator, register_validator
from .result_extractor import ResultExtractor, register_extractor
from .text_clipper import TextClipper
from .text_renderer import TextRenderer
from .time_provider import TimeProvider

__all__ = [
    "ConditionalRouter",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "ResultExtractor",
    "TextClipper",
    "TextRenderer",
    "TimeProvider",
    "register_extractor",
    "register_model",
    "register_transformation",
    "register_validator",
]
