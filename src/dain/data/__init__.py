"""Data contract, dataset registry and loaders."""

from dain.data.registry_api import DatasetInfo, dataset_info, load_dataset, register_dataset
from dain.data.spec import (
    DatasetSpec,
    ModalitySpec,
    MultimodalDataset,
    make_batch,
    standardize_,
    stratified_split,
)

__all__ = [
    "DatasetInfo",
    "DatasetSpec",
    "ModalitySpec",
    "MultimodalDataset",
    "dataset_info",
    "load_dataset",
    "make_batch",
    "register_dataset",
    "standardize_",
    "stratified_split",
]
