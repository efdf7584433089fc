"""sidkd: Kaldi-style speaker verification with an i-vector teacher and a distilled ResNet student."""

__version__ = "0.1.0"
