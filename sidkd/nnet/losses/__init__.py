"""Training losses of the student (docs/math.md §4): AAM-softmax and its sub-centre form, the
distillation losses to the teacher (projection + MSE, or batch relations), and the long/short KL
term of the transfer stage."""

from sidkd.nnet.losses.aam import AAMSoftmax, margin_at
from sidkd.nnet.losses.distill import TeacherDistillation, TeacherNormalizer, joint_loss
from sidkd.nnet.losses.kl import long_short_kl
from sidkd.nnet.losses.relation import RELATION_LOSSES, RelationDistillation

__all__ = ["AAMSoftmax", "margin_at", "TeacherDistillation", "TeacherNormalizer", "joint_loss", "long_short_kl",
           "RELATION_LOSSES", "RelationDistillation"]
