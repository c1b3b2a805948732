"""Dictionary learning whose sparse codes serve a prediction task."""

from ._dict_learning import TaskDrivenDictionaryLearning

__all__ = ["TaskDrivenDictionaryLearning"]
