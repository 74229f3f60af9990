// Cloned-operator kernels: coefficient maps and contractions.
