"""Back-ends: mean subtraction, LDA, length normalisation, two-covariance PLDA, cosine, AS-norm."""
