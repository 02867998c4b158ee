"""Per-modality encoders (registry ``ENCODERS``) and the shared multi-modality front-end."""

from dain.encoders import image, irregular, sequence, vector  # noqa: F401,E402  (register built-ins)
from dain.encoders.base import EncodedModality, ModalityEncoders, build_encoder, default_encoder_for

__all__ = ["EncodedModality", "ModalityEncoders", "build_encoder", "default_encoder_for"]
