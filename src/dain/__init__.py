"""dain: dynamic, interaction-aware multimodal fusion (DAIN, Time-MoE/MERGE, interaction quantification, baselines)."""

from dain.data import DatasetSpec, ModalitySpec, MultimodalDataset, load_dataset
from dain.models import ModelOutput, build_model
from dain.registry import DATASETS, ENCODERS, MODELS

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "ENCODERS",
    "MODELS",
    "DatasetSpec",
    "ModalitySpec",
    "ModelOutput",
    "MultimodalDataset",
    "build_model",
    "load_dataset",
]
