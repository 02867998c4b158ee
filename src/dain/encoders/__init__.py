"""Per-modality encoders (registry ``ENCODERS``) and the shared multi-modality front-end."""

from dain.encoders.base import EncodedModality, ModalityEncoders, build_encoder, default_encoder_for
from dain.encoders import vector, sequence, image  # noqa: F401,E402  (register built-ins)

__all__ = ["EncodedModality", "ModalityEncoders", "build_encoder", "default_encoder_for"]
