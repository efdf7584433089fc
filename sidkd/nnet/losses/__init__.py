"""Training losses of the student (docs/math.md §4): AAM-softmax and its sub-centre form, the
distillation loss to the teacher i-vector, and the long/short KL term of the transfer stage."""

from sidkd.nnet.losses.aam import AAMSoftmax, margin_at
from sidkd.nnet.losses.distill import TeacherDistillation, TeacherNormalizer
from sidkd.nnet.losses.kl import long_short_kl

__all__ = ["AAMSoftmax", "margin_at", "TeacherDistillation", "TeacherNormalizer", "long_short_kl"]
