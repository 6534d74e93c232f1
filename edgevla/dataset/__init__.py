"""LeRobotDataset v3.0 on disk: a crash-safe writer, a reader for training, repair and checks.

Needs the `record` extra (pyarrow, PyAV). See docs/DATASET.md.
"""

from edgevla.dataset.format import DatasetFormatError
from edgevla.dataset.reader import DatasetReader
from edgevla.dataset.repair import RepairReport, repair
from edgevla.dataset.video import VideoConfig
from edgevla.dataset.writer import DatasetWriter

__all__ = ["DatasetFormatError", "DatasetReader", "DatasetWriter", "RepairReport", "VideoConfig", "repair"]
