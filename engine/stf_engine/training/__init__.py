"""Training the deep models: Wald self-training on one scene or time series, with patches, checkpoints and resume."""
from .request import TrainingRequest, TrainingResult
from .loop import check_training, train

__all__ = ["TrainingRequest", "TrainingResult", "check_training", "train"]
