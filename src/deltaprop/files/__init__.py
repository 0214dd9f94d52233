"""Files that hold data and never code: the safetensors byte format with a checksummed document
(:mod:`.format`), writes that a crash cannot half-do (:mod:`.atomic`), model files
(:mod:`.model_files`: ``dp.save``, ``dp.load``, ``dp.inspect_file``) and training checkpoints
(:mod:`.checkpoints`).
"""

from .model_files import FileInfo, inspect_file, load, load_preprocessor, save

__all__ = ["FileInfo", "inspect_file", "load", "load_preprocessor", "save"]
